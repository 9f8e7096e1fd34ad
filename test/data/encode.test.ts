import { describe, expect, it } from "vitest";
import { encodeExchange, specialsOf, type EncodeContext } from "../../src/runtime/data/encode.js";
import { parseTemplate, renderExchange } from "../../src/runtime/data/template.js";
import { ByteTokenizer, type Tokenizer } from "../../src/runtime/tokenizer/index.js";
import { templateByName } from "../../src/models/templates.js";
import { CHATGLM2, byteIds } from "./helpers.js";

const tok = new ByteTokenizer();
const ctx = (over: Partial<EncodeContext> = {}): EncodeContext => ({
  tokenizer: tok,
  specials: specialsOf(tok, true),
  eosId: 2,
  lengths: { maxSource: 512, maxTarget: 512 },
  truncation: "right",
  loss: "response",
  ...over,
});

function encodeRecord(prompt: string, response: string, c: EncodeContext, template = CHATGLM2) {
  const t = renderExchange(parseTemplate(template), { prompt, response });
  return encodeExchange(t.prompt, t.response, c);
}

describe("templates", () => {
  it("the chatglm2 template named by the models module is the one tested here", () => {
    expect(templateByName("chatglm2")).toBe(CHATGLM2);
  });

  it("renders ChatGLM2's build_prompt, history turns included, with {round}", () => {
    const t = parseTemplate("[Round {round}]\n\n问：{prompt}\n\n答：");
    const r = renderExchange(t, { prompt: "头痛吗", response: "不" }, [{ prompt: "你好", response: "你好！" }, { prompt: "q2", response: "r2" }]);
    // ChatGLM2 build_prompt: "[Round i]\n\n问：q\n\n答：r\n\n" per earlier turn, then the current round.
    expect(r.prompt).toBe("[Round 1]\n\n问：你好\n\n答：你好！\n\n[Round 2]\n\n问：q2\n\n答：r2\n\n[Round 3]\n\n问：头痛吗\n\n答：");
    expect(r.response).toBe("不");
  });

  it("puts text after {response} on the response side, fills {system} once, keeps {{ }} literal", () => {
    const t = parseTemplate("<<{system}>> {{Q}}: {prompt}\nA: {response}</s>");
    expect(renderExchange(t, { prompt: "p", response: "r" }, [], "S")).toEqual({ prompt: "<<S>> {Q}: p\nA: ", response: "r</s>" });
    expect(renderExchange(t, { prompt: "p", response: "r" }, [{ prompt: "p0", response: "r0" }], "S").prompt).toBe(
      "<<S>> {Q}: p0\nA: r0</s>\n\n<<>> {Q}: p\nA: ",
    );
    // No {system} in the template: a system text goes first, then a blank line.
    expect(renderExchange(parseTemplate("{prompt}"), { prompt: "p", response: "r" }, [], "S").prompt).toBe("S\n\np");
    expect(renderExchange(parseTemplate("{prompt}"), { prompt: "p", response: "r" }).prompt).toBe("p");
  });

  it("rejects unknown placeholders and a second {response}, accepts stray braces", () => {
    expect(() => parseTemplate("{instruction}: {prompt}")).toThrow(/\{instruction\} is not one of/);
    expect(() => parseTemplate("{prompt}{response}{response}")).toThrow(/\{response\} twice/);
    expect(renderExchange(parseTemplate("{ a } {prompt} }"), { prompt: "p", response: "" }).prompt).toBe("{ a } p }");
  });
});

describe("preprocessing (ChatGLM2 recipe) with the byte tokenizer", () => {
  const prompt = "头痛怎么办？";
  const response = "多休息，多喝水。";
  const promptText = `[Round 1]\n\n问：${prompt}\n\n答：`;

  it("input = bos + template(prompt) + response + eos; labels mask the prompt part", () => {
    const e = encodeRecord(prompt, response, ctx());
    const a = [1, ...byteIds(promptText)];
    const b = byteIds(response);
    expect(Array.from(e.inputIds)).toEqual([...a, ...b, 2]);
    expect(Array.from(e.labels)).toEqual([...a.map(() => -100), ...b, 2]);
    expect(e.promptLength).toBe(a.length);
    expect(Array.from(e.labels).filter((l) => l === -100).length).toBe(e.promptLength);
    expect(e.inputIds[e.inputIds.length - 1]).toBe(2);
    expect([e.truncatedPrompt, e.truncatedResponse]).toEqual([false, false]);
  });

  it("loss = all trains every position", () => {
    const e = encodeRecord(prompt, response, ctx({ loss: "all" }));
    expect(Array.from(e.labels)).toEqual(Array.from(e.inputIds));
  });

  it("without special tokens the prompt has no bos", () => {
    const e = encodeRecord(prompt, response, ctx({ specials: specialsOf(tok, false) }));
    expect(Array.from(e.inputIds)).toEqual([...byteIds(promptText), ...byteIds(response), 2]);
  });

  it("cuts the prompt to max_source (bos counted) on the chosen side and the response's end to max_target", () => {
    const a = byteIds(promptText);
    const b = byteIds(response);
    const right = encodeRecord(prompt, response, ctx({ lengths: { maxSource: 10, maxTarget: 5 } }));
    expect(Array.from(right.inputIds)).toEqual([1, ...a.slice(0, 9), ...b.slice(0, 5), 2]);
    expect(Array.from(right.labels)).toEqual([...Array(10).fill(-100), ...b.slice(0, 5), 2]);
    expect([right.truncatedPrompt, right.truncatedResponse]).toEqual([true, true]);
    const left = encodeRecord(prompt, response, ctx({ lengths: { maxSource: 10, maxTarget: 5 }, truncation: "left" }));
    expect(Array.from(left.inputIds)).toEqual([1, ...a.slice(a.length - 9), ...b.slice(0, 5), 2]);
    // Budgets exactly met: nothing is cut.
    const exact = encodeRecord(prompt, response, ctx({ lengths: { maxSource: a.length + 1, maxTarget: b.length } }));
    expect([exact.truncatedPrompt, exact.truncatedResponse]).toEqual([false, false]);
    expect(exact.inputIds.length).toBe(a.length + b.length + 2);
  });

  it("max_length: the response is cut first, then the prompt; eos always ends the sequence", () => {
    const a = byteIds("问题");
    const b = byteIds("回答很长的一段话");
    const total = 1 + a.length + b.length + 1;
    const cutB = encodeExchange("问题", "回答很长的一段话", ctx({ lengths: { maxLength: total - 4 } }));
    expect(Array.from(cutB.inputIds)).toEqual([1, ...a, ...b.slice(0, b.length - 4), 2]);
    expect([cutB.truncatedPrompt, cutB.truncatedResponse]).toEqual([false, true]);
    const cutA = encodeExchange("问题", "回答很长的一段话", ctx({ lengths: { maxLength: 5 }, truncation: "left" }));
    expect(Array.from(cutA.inputIds)).toEqual([1, ...a.slice(a.length - 3), 2]);
    expect(Array.from(cutA.labels)).toEqual([-100, -100, -100, -100, 2]);
    expect([cutA.truncatedPrompt, cutA.truncatedResponse]).toEqual([true, true]);
    const fits = encodeExchange("问题", "回答很长的一段话", ctx({ lengths: { maxLength: total } }));
    expect(fits.inputIds.length).toBe(total);
    expect([fits.truncatedPrompt, fits.truncatedResponse]).toEqual([false, false]);
  });

  it("keeps a tokenizer's prefix and suffix specials when the prompt is cut", () => {
    // A tokenizer that wraps text as [gMASK]=5 <sop>=6 ... 7, like a ChatGLM-style post-processor.
    const wrap: Tokenizer = {
      vocabSize: 300,
      eosId: 2,
      encode: (text, o = {}) => [...(o.addSpecial === false ? [] : [5, 6]), ...byteIds(text), ...(o.addSpecial === false ? [] : [7])],
      decode: () => "",
    };
    const specials = specialsOf(wrap, true);
    expect(specials).toEqual({ prefix: [5, 6], suffix: [7] });
    const e = encodeExchange("abcdef", "xy", ctx({ tokenizer: wrap, specials, lengths: { maxSource: 6, maxTarget: 8 } }));
    expect(Array.from(e.inputIds)).toEqual([5, 6, ...byteIds("abc"), 7, ...byteIds("xy"), 2]);
    expect(e.promptLength).toBe(6);
  });
});
