/**
 * What to write as PEFT's `target_modules` (and IA3's `feedforward_modules`) so that PEFT, reading
 * the config back, adapts exactly the modules the pefc run adapted, and nothing else.
 *
 * PEFT's rules (peft-methods.md §15.2): a list entry NAME matches module KEY when KEY == NAME or KEY
 * ends with "." + NAME; `layers_to_transform` then keeps only modules whose path has
 * `.<layers_pattern>.<i>.` with i in the list (modules outside the layer container drop out).
 * IA3's feedforward entries match targeted modules by a plain `KEY.endswith(NAME)`, and must be a
 * subset of the target entries.
 *
 * The rule used here: each selected module is named by its shortest dotted suffix that matches no
 * unselected module of the model (`q_proj`, `mlp.c_proj`, `layers.1.self_attn.v_proj`; never one
 * starting at a layer number; at worst the full path, which PEFT matches exactly), so a list always
 * exists and no regex is needed. Entries are sorted. When every selected module sits
 * in the layer container, a second candidate restricts the model to the selected layers and adds
 * layers_to_transform/layers_pattern; the shorter list wins (ties: no layer filter). The result is
 * checked by simulating PEFT's matching, and the checker is exported for tests. IA3's config class
 * has no layer filter (peft-fields.ts), so IA3 asks for the plain list only.
 */
import type { ModelProfile } from "../../models/types.js";

export interface PeftTargets {
  targetModules: string[];
  /** Set when the list relies on PEFT's layer filter. */
  layersToTransform?: number[];
  layersPattern?: string;
  /** IA3: the entries of targetModules that name feed-forward modules. */
  feedforwardModules?: string[];
}

/** Module paths PEFT would adapt under `t`, over the profile's modules, in module-tree order. */
export function peftMatches(profile: ModelProfile, t: Pick<PeftTargets, "targetModules" | "layersToTransform" | "layersPattern">): string[] {
  return profile.modules
    .map((m) => m.path)
    .filter((key) => t.targetModules.some((name) => key === name || key.endsWith(`.${name}`)))
    .filter((key) => {
      if (!t.layersToTransform) return true;
      const i = layerIndexPeft(key, t.layersPattern);
      return i !== undefined && t.layersToTransform.includes(i);
    });
}

/** IA3: which of `targeted` PEFT treats as feed-forward under `names`. */
export function peftFeedforward(targeted: readonly string[], names: readonly string[]): string[] {
  return targeted.filter((key) => names.some((n) => key.endsWith(n)));
}

/** PEFT's layer index of a module path: the digits after `.<pattern>.`, or after the first `.<segment>.` */
function layerIndexPeft(key: string, pattern: string | undefined): number | undefined {
  const re = pattern === undefined ? /^.*?\.[^.]*\.(\d+)\./ : new RegExp(`^.*\\.${escapeRe(pattern)}\\.(\\d+)\\.`);
  const m = re.exec(key);
  return m ? Number(m[1]) : undefined;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The names for `groups` (disjoint sets of selected paths; IA3 passes feed-forward and other
 * modules as two groups so every entry names modules of one kind).
 */
export function peftTargets(profile: ModelProfile, groups: readonly (readonly string[])[], opts: { layerFilter?: boolean } = {}): PeftTargets {
  const selected = groups.flat();
  const all = profile.modules.map((m) => m.path);
  const plain = namesFor(groups, all);
  let best: PeftTargets = { targetModules: plain.flat().sort() };
  const layerOf = new Map(profile.modules.map((m) => [m.path, m.layer]));
  const layers = [...new Set(selected.map((p) => layerOf.get(p)))];
  const pattern = profile.layerContainer.split(".").pop()!;
  if (opts.layerFilter !== false && layers.every((l) => l !== undefined) && layers.length < profile.dims.numLayers) {
    const keep = new Set(layers as number[]);
    const inLayers = profile.modules.filter((m) => m.layer !== undefined && keep.has(m.layer)).map((m) => m.path);
    const filtered = namesFor(groups, inLayers);
    if (filtered.flat().length < best.targetModules.length) {
      best = { targetModules: filtered.flat().sort(), layersToTransform: [...keep].sort((a, b) => a - b), layersPattern: pattern };
    }
  }
  const got = peftMatches(profile, best);
  const want = new Set(selected);
  if (got.length !== want.size || got.some((p) => !want.has(p))) {
    throw new Error(`target_modules ${JSON.stringify(best.targetModules)} would match ${got.join(", ")} instead of ${selected.join(", ")}`);
  }
  return best;
}

/** Per group, sorted unique shortest suffixes that match only that group's modules among `universe`. */
function namesFor(groups: readonly (readonly string[])[], universe: readonly string[]): string[][] {
  return groups.map((group) => {
    const mine = new Set(group);
    const others = universe.filter((p) => !mine.has(p));
    const names = new Set<string>();
    for (const path of group) names.add(shortestSuffix(path, others));
    return [...names].sort();
  });
}

function shortestSuffix(path: string, others: readonly string[]): string {
  const segs = path.split(".");
  for (let k = 1; k < segs.length; k++) {
    if (/^\d+$/.test(segs[segs.length - k]!)) continue;
    const name = segs.slice(segs.length - k).join(".");
    if (!others.some((o) => o === name || o.endsWith(`.${name}`))) return name;
  }
  return path;
}

/**
 * Names for IA3's feedforward_modules: the target entries that name feed-forward modules, checked
 * against PEFT's endswith rule over the targeted modules.
 */
export function feedforwardNames(t: PeftTargets, ffGroup: readonly string[], targeted: readonly string[]): string[] {
  const ff = new Set(ffGroup);
  const names = t.targetModules.filter((n) => targeted.some((p) => (p === n || p.endsWith(`.${n}`)) && ff.has(p)));
  const got = peftFeedforward(targeted, names);
  if (got.length !== ff.size || got.some((p) => !ff.has(p))) {
    throw new Error(`feedforward_modules ${JSON.stringify(names)} would match ${got.join(", ")} instead of ${[...ff].join(", ")}`);
  }
  return names;
}

/**
 * The key of a module in LoRA's rank_pattern/alpha_pattern. PEFT matches it as `(.*\.)?(KEY)$`
 * (older releases: `.*\.KEY$`, which needs a dot before it), so the path minus its first segment
 * works in both: `layers.0.self_attn.q_proj`. A one-segment path is written whole.
 */
export function patternKey(path: string): string {
  const i = path.indexOf(".");
  return i < 0 ? path : path.slice(i + 1);
}

/** The module a pattern key selects under PEFT's current rule, first key wins (for tests and checks). */
export function patternMatch(keys: readonly string[], modulePath: string, legacy = false): string | undefined {
  return keys.find((k) => (legacy ? new RegExp(`^.*\\.${k}$`) : new RegExp(`^(.*\\.)?(${k})$`)).test(modulePath));
}
