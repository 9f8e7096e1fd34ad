// `${NAME}` in a model path stands for the environment variable NAME, so one .peft file can name a
// checkpoint that lives in a different place on each machine (model "${CHATGLM2_6B}";). Only the
// braced form is expanded: a bare `$` is an ordinary path character.

export type Expanded = { value: string } | { unset: string };

export function expandEnv(text: string, env: Readonly<Record<string, string | undefined>> = process.env): Expanded {
  let unset: string | undefined;
  const value = text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
    const v = env[name];
    if (v === undefined || v === "") unset ??= name;
    return v ?? "";
  });
  return unset === undefined ? { value } : { unset };
}
