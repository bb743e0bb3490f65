plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "org.moleport.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.moleport.demo"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    kotlinOptions {
        jvmTarget = "17"
    }

    buildFeatures {
        viewBinding = true
    }

    androidResources {
        // TFLite models are memory-mapped from the APK, so they must be stored uncompressed.
        noCompress += "tflite"
    }
}

// The model comes from `make android-assets` (bundle -> src/main/assets/model/); fail early and clearly without it.
val checkModelAssets by tasks.registering {
    val modelDir = layout.projectDirectory.dir("src/main/assets/model")
    doLast {
        val missing = listOf("model_fp32.tflite", "spec.json", "labels.txt", "SHA256SUMS").filterNot { modelDir.file(it).asFile.isFile }
        if (missing.isNotEmpty()) {
            throw GradleException(
                "Model assets missing in ${modelDir.asFile}: $missing. Run `make export` then `make android-assets` " +
                    "from the repository root."
            )
        }
    }
}
tasks.named("preBuild") { dependsOn(checkModelAssets) }

dependencies {
    implementation(project(":core"))
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.appcompat)
    implementation(libs.androidx.activity.ktx)
    implementation(libs.androidx.lifecycle.runtime.ktx)
    implementation(libs.androidx.constraintlayout)
    implementation(libs.androidx.exifinterface)
    implementation(libs.material)
    implementation(libs.camerax.core)
    implementation(libs.camerax.camera2)
    implementation(libs.camerax.lifecycle)
    implementation(libs.camerax.view)
    implementation(libs.litert)
    implementation(libs.litert.support)
    implementation(libs.litert.metadata)
    testImplementation(libs.junit)
}
