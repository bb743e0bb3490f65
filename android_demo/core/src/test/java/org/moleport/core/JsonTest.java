package org.moleport.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/** The strict JSON reader and writer. */
public class JsonTest {
    @Test
    public void parsesNestedValues() {
        Object v = Json.parse(" {\"a\": [1, -2.5e2, true, false, null], \"b\": {\"c\": \"x\\\"\\u00e9\\n\"}} ");
        Map<?, ?> m = (Map<?, ?>) v;
        List<?> a = (List<?>) m.get("a");
        assertEquals(1.0, a.get(0));
        assertEquals(-250.0, a.get(1));
        assertEquals(Boolean.TRUE, a.get(2));
        assertNull(a.get(4));
        assertEquals("x\"\u00e9\n", ((Map<?, ?>) m.get("b")).get("c"));
    }

    @Test
    public void rejectsMalformedInput() {
        String[] bad = {"", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "{'a': 1}", "[1] 2", "tru", "\"a\tb\"",
            "{\"a\" 1}", "NaN", "\"\\x\"", "{\"a\":1,\"a\":2}"};
        for (String s : bad) {
            assertThrows("should reject: " + s, Json.JsonException.class, () -> Json.parse(s));
        }
        Json.JsonException e = assertThrows(Json.JsonException.class, () -> Json.parse("[1, 2"));
        assertTrue(e.getMessage(), e.getMessage().contains("offset 5"));
    }

    @Test
    public void writesWhatItReads() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", "left \"shoulder\"\n");
        m.put("n", 3L);
        m.put("p", 0.125);
        m.put("tiny", 1e-7);
        m.put("list", Arrays.asList(1, true, null));
        String text = Json.write(m);
        assertEquals("{\"name\":\"left \\\"shoulder\\\"\\n\",\"n\":3,\"p\":0.125,\"tiny\":1.0E-7,\"list\":[1,true,null]}",
                text);
        Map<?, ?> back = (Map<?, ?>) Json.parse(text);
        assertEquals(m.get("name"), back.get("name"));
        assertEquals(1e-7, back.get("tiny"));
        assertThrows(Json.JsonException.class, () -> Json.write(Double.NaN));
        assertThrows(Json.JsonException.class, () -> Json.write(new Object()));
    }
}
