/** The suite's command line: which families, which seed, how many cases, one case to replay. */
export interface FaultOptions {
  only?: string[];
  /** Replaces the random seed of the seeded families; with `case`, replays that one case. */
  seed?: number;
  case?: number;
  /** Cases per seed for the mutation families (default: the family's own). */
  cases?: number;
  /** Fewer cases and kills, for a quick look (not what CI runs). */
  quick: boolean;
  verbose: boolean;
}

export function parseOptions(argv: string[]): FaultOptions {
  const o: FaultOptions = { quick: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--only") o.only = next().split(",");
    else if (a === "--seed") o.seed = Number(next()) >>> 0;
    else if (a === "--case") o.case = Number(next());
    else if (a === "--cases") o.cases = Number(next());
    else if (a === "--quick") o.quick = true;
    else if (a === "--verbose" || a === "-v") o.verbose = true;
    else throw new Error(`unknown option ${a}; options: --only FAMILY[,FAMILY] --seed N --case I --cases N --quick --verbose`);
  }
  return o;
}

export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}
