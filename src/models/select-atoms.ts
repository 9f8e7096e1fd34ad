/**
 * How one selector atom meets one module path. Names, paths and globs match as PEFT's target_modules
 * list does, a segment-aligned suffix (`proj` does not match `q_proj`), extended with `*` inside one
 * segment and `**` over any number of segments. Regexes must match the whole path, as PEFT's string
 * form does with re.fullmatch.
 */
import type { SelectorAtom } from "../parser/ast.js";

type Segment = "**" | RegExp;

export type PathTest = (path: string) => boolean;

/** A test for a name, path or glob atom. */
export function suffixTest(pattern: string): PathTest {
  const segs: Segment[] = pattern.split(".").map((s) => (s === "**" ? "**" : segmentRegex(s)));
  return (path) => {
    const parts = path.split(".");
    for (let start = 0; start <= parts.length; start++) if (matchFrom(segs, 0, parts, start)) return true;
    return false;
  };
}

/** A whole-path test for a regex atom, or the reason it is not a valid one. */
export function regexTest(source: string, flags: string): PathTest | string {
  const bad = [...flags].filter((f) => f !== "i");
  if (bad.length > 0) return `flag ${bad.join("")} is not allowed; the only flag is i`;
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${source})$`, flags);
  } catch (e) {
    return e instanceof Error ? e.message.replace(/^Invalid regular expression: /, "") : String(e);
  }
  return (path) => re.test(path);
}

/** The atom as the user wrote it, for messages. */
export function atomText(a: SelectorAtom): string {
  switch (a.kind) {
    case "name":
    case "path":
    case "glob":
      return a.text;
    case "regex":
      return `/${a.source}/${a.flags}`;
    case "role":
      return `@${a.name}`;
    case "ref":
      return `$${a.name}`;
  }
}

function segmentRegex(seg: string): RegExp {
  const body = seg
    .split("*")
    .map((lit) => lit.replace(/[\\^$.|?+()[\]{}]/g, "\\$&"))
    .join("[^.]*");
  return new RegExp(`^${body}$`);
}

function matchFrom(segs: readonly Segment[], si: number, parts: readonly string[], pi: number): boolean {
  if (si === segs.length) return pi === parts.length;
  const seg = segs[si]!;
  if (seg === "**") {
    for (let k = pi; k <= parts.length; k++) if (matchFrom(segs, si + 1, parts, k)) return true;
    return false;
  }
  return pi < parts.length && seg.test(parts[pi]!) && matchFrom(segs, si + 1, parts, pi + 1);
}
