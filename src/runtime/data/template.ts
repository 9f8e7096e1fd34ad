// Rendering a chat template around one record. Placeholders: {system}, {prompt}, {response} and
// {round} (1-based turn number, so ChatGLM2's "[Round {round}]" can number history turns as its
// build_prompt does); {{ and }} are literal braces. The prompt side is the template up to
// {response}; whatever follows {response} (an end marker, say) is appended to the response and so
// trained with it. A template without {response} ends where the model starts writing.
//
// History: each earlier (prompt, response) turn is rendered with the whole template, its
// response filled in, then "\n\n" — ChatGLM2's turn separator — and the current turn follows.
// {system} is filled in the first turn only; a template without {system} gets a non-empty system
// text prepended with "\n\n".

import { UserError } from "../io/errors.js";

type Part = { text: string } | { slot: "system" | "prompt" | "round" };

export interface Template {
  /** Parts before {response}: the prompt side. */
  head: Part[];
  /** Parts after {response}, appended to the response. */
  tail: Part[];
  hasResponse: boolean;
  hasSystem: boolean;
}

const SLOTS = new Set(["system", "prompt", "response", "round"]);

export function parseTemplate(text: string): Template {
  const t: Template = { head: [], tail: [], hasResponse: false, hasSystem: false };
  let literal = "";
  const flush = (): void => {
    if (literal) (t.hasResponse ? t.tail : t.head).push({ text: literal });
    literal = "";
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if ((c === "{" || c === "}") && text[i + 1] === c) {
      literal += c;
      i++;
      continue;
    }
    if (c === "{") {
      const close = text.indexOf("}", i);
      const name = close < 0 ? "" : text.slice(i + 1, close);
      if (close >= 0 && SLOTS.has(name)) {
        flush();
        if (name === "response") {
          if (t.hasResponse) throw new UserError(`template ${JSON.stringify(text)} has {response} twice`);
          t.hasResponse = true;
        } else {
          if (name === "system") t.hasSystem = true;
          (t.hasResponse ? t.tail : t.head).push({ slot: name as "system" | "prompt" | "round" });
        }
        i = close;
        continue;
      }
      if (close >= 0 && /^\w+$/.test(name)) {
        throw new UserError(`template placeholder {${name}} is not one of {system}, {prompt}, {response}; write {{ for a literal brace`);
      }
    }
    literal += c;
  }
  flush();
  return t;
}

export interface Turn {
  prompt: string;
  response: string;
}

/** Prompt text (what the model reads) and response text (what it learns to write) of one record. */
export function renderExchange(t: Template, current: Turn, history: readonly Turn[] = [], system = ""): { prompt: string; response: string } {
  const fill = (parts: Part[], turn: Turn, round: number, sys: string): string =>
    parts.map((p) => ("text" in p ? p.text : p.slot === "prompt" ? turn.prompt : p.slot === "system" ? sys : String(round))).join("");
  let prompt = !t.hasSystem && system !== "" ? `${system}\n\n` : "";
  history.forEach((turn, i) => {
    const sys = i === 0 ? system : "";
    prompt += fill(t.head, turn, i + 1, sys) + turn.response + fill(t.tail, turn, i + 1, sys) + "\n\n";
  });
  const round = history.length + 1;
  const sys = history.length === 0 ? system : "";
  prompt += fill(t.head, current, round, sys);
  return { prompt, response: current.response + fill(t.tail, current, round, sys) };
}
