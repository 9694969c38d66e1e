package gptq4j.spark;

import gptq4j.runtime.FinishReason;
import gptq4j.runtime.GenerationRequest;
import gptq4j.runtime.GenerationResult;
import gptq4j.runtime.SamplingParams;
import gptq4j.runtime.arrow.ArrowGeneration;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.BigIntVector;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.ValueVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.complex.StructVector;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The engine's Arrow entry point: vectors to requests and results to a struct vector (no model needed). */
class ArrowGenerationTest {

    private static VarCharVector prompts(BufferAllocator a, String... ps) {
        VarCharVector v = new VarCharVector("prompt", a);
        v.allocateNew();
        for (int i = 0; i < ps.length; i++) {
            if (ps[i] == null) v.setNull(i);
            else v.setSafe(i, ps[i].getBytes(StandardCharsets.UTF_8));
        }
        v.setValueCount(ps.length);
        return v;
    }

    @Test
    void perRowParametersOverrideDefaultsAndBadRowsAreRejectedNotSent() {
        try (BufferAllocator a = new RootAllocator();
             VarCharVector p = prompts(a, "a", "b", null, "d", "e");
             BigIntVector maxNew = new BigIntVector("max_new_tokens", a);
             Float8Vector topP = new Float8Vector("top_p", a);
             Float8Vector seed = new Float8Vector("seed", a)) {
            maxNew.allocateNew(5);
            topP.allocateNew(5);
            seed.allocateNew(5);
            maxNew.set(0, 7); maxNew.setNull(1); maxNew.set(2, 3); maxNew.set(3, -1); maxNew.set(4, 5);
            topP.set(0, 0.5); topP.setNull(1); topP.setNull(2); topP.setNull(3); topP.set(4, 2.0);
            seed.set(0, 42); seed.set(1, 1.5); seed.setNull(2); seed.setNull(3); seed.setNull(4);
            maxNew.setValueCount(5); topP.setValueCount(5); seed.setValueCount(5);
            Map<String, ValueVector> params = new LinkedHashMap<>();
            params.put("max_new_tokens", maxNew);
            params.put("top_p", topP);
            params.put("seed", seed);
            SamplingParams defaults = SamplingParams.greedy(9);
            List<List<GenerationRequest>> sent = new ArrayList<>();
            try (StructVector out = ArrowGeneration.generate(rs -> {
                sent.add(rs);
                List<GenerationResult> res = new ArrayList<>();
                for (GenerationRequest r : rs) {
                    res.add(r.prompt() == null ? null : new GenerationResult(new int[]{1}, new int[]{5, 6},
                            r.prompt() + "/" + r.params().maxNewTokens(), FinishReason.LENGTH, 1, 2, List.of(), null));
                }
                return res;
            }, p, params, defaults, a)) {
                // rows 1 (seed 1.5), 3 (max_new_tokens -1) and 4 (top_p 2) never reach the engine
                assertEquals(1, sent.size());
                List<GenerationRequest> rs = sent.get(0);
                assertEquals(2, rs.size());
                assertEquals("a", rs.get(0).prompt());
                assertEquals(7, rs.get(0).params().maxNewTokens());
                assertEquals(0.5, rs.get(0).params().topP());
                assertEquals(42, rs.get(0).params().seed());
                assertEquals(0.0, rs.get(0).params().temperature());
                assertNull(rs.get(1).prompt());

                assertEquals(5, out.getValueCount());
                VarCharVector text = out.getChild("text", VarCharVector.class);
                VarCharVector reason = out.getChild("finish_reason", VarCharVector.class);
                VarCharVector error = out.getChild("error", VarCharVector.class);
                IntVector completion = out.getChild("completion_tokens", IntVector.class);
                assertEquals("a/7", new String(text.get(0), StandardCharsets.UTF_8));
                assertEquals("length", new String(reason.get(0), StandardCharsets.UTF_8));
                assertEquals(2, completion.get(0));
                assertTrue(out.isNull(2), "null prompt gives a null struct");
                for (int row : new int[]{1, 3, 4}) {
                    assertEquals("error", new String(reason.get(row), StandardCharsets.UTF_8), "row " + row);
                    assertNotNull(error.getObject(row), "row " + row);
                }
                assertTrue(error.getObject(1).toString().contains("seed"), error.getObject(1).toString());
                assertTrue(error.getObject(3).toString().contains("max_new_tokens"), error.getObject(3).toString());
                assertTrue(error.getObject(4).toString().contains("top_p"), error.getObject(4).toString());
            }
        }
    }

    @Test
    void resultCountMismatchIsAnError() {
        try (BufferAllocator a = new RootAllocator(); VarCharVector p = prompts(a, "a", "b")) {
            IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                    () -> ArrowGeneration.generate(rs -> List.of(), p, Map.of(), SamplingParams.greedy(1), a));
            assertTrue(e.getMessage().contains("2 requests"), e.getMessage());
        }
    }
}
