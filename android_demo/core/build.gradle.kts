// Pure-JVM core (Java 17, no android.*): preprocessing, input layout, spec parsing, risk bands, history.
// Plain-javac test run without Gradle: bash android_demo/scripts/core_test.sh (make android-core-test).
plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

dependencies {
    testImplementation(libs.junit)
}

tasks.withType<JavaCompile>().configureEach {
    options.compilerArgs.addAll(listOf("-Xlint:all", "-Werror"))
}

tasks.test {
    // Golden fixture from `moleport golden --out DIR`; without it GoldenFixtureTest is skipped.
    val golden = providers.environmentVariable("MOLEPORT_GOLDEN")
    if (golden.isPresent) {
        systemProperty("moleport.golden", golden.get())
    }
    // Assets packaged by scripts/copy_assets.sh (ASSETS_DIR=DIR); without them the packaged-assets test is skipped.
    val assets = providers.environmentVariable("MOLEPORT_ASSETS")
    if (assets.isPresent) {
        systemProperty("moleport.assets", assets.get())
    }
    systemProperty("java.awt.headless", "true")
}
