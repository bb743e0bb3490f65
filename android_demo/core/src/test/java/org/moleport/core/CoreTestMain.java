package org.moleport.core;

import org.junit.runner.JUnitCore;
import org.junit.runner.Result;
import org.junit.runner.notification.Failure;

/** Runs every core test class and ends with the line {@code core: N passed, M failed}. */
public final class CoreTestMain {
    static final Class<?>[] TESTS = {ImageOpsTest.class, ResizeTest.class, ModelInputTest.class, SpecTest.class,
        PredictionTest.class, JsonTest.class, HistoryTest.class, MoleCheckerTest.class, GoldenFixtureTest.class,
        AssetIntegrityTest.class};

    private CoreTestMain() {
    }

    public static void main(String[] args) {
        Result result = JUnitCore.runClasses(TESTS);
        for (Failure f : result.getFailures()) {
            System.out.println("FAIL " + f.getTestHeader() + ": " + f.getMessage());
            String trace = f.getTrace();
            System.out.println(trace.length() > 1500 ? trace.substring(0, 1500) + "..." : trace);
        }
        int skipped = result.getAssumptionFailureCount() + result.getIgnoreCount();
        int failed = result.getFailureCount();
        int passed = result.getRunCount() - failed - result.getAssumptionFailureCount();
        if (skipped > 0) {
            System.out.println("core: " + skipped + " skipped (assumption not met, e.g. no bundle in the golden fixture)");
        }
        System.out.println("core: " + passed + " passed, " + failed + " failed");
        System.exit(failed == 0 && result.getRunCount() > 0 ? 0 : 1);
    }
}
