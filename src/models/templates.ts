/**
 * Named prompt templates. A template renders the prompt side of one exchange with {system} and
 * {prompt}; the response tokens follow it directly, so a template ends where the model starts writing.
 * Each architecture names its default (ChatGLM2's own round format, Llama-2's [INST] form, plain text for
 * GPT-2), and a data block may pick another by name.
 */

const TEMPLATES = {
  chatglm2: "[Round {round}]\n\n问：{prompt}\n\n答：",
  llama2: "[INST] {prompt} [/INST]",
  alpaca:
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
    "### Instruction:\n{prompt}\n\n### Response:\n",
  plain: "{prompt}",
} as const satisfies Record<string, string>;

export type TemplateName = keyof typeof TEMPLATES;

export const TEMPLATE_NAMES: readonly TemplateName[] = Object.keys(TEMPLATES) as TemplateName[];

export function templateByName(name: string): string | undefined {
  return Object.hasOwn(TEMPLATES, name) ? TEMPLATES[name as TemplateName] : undefined;
}

export function templateNames(): string[] {
  return [...TEMPLATE_NAMES];
}
