/**
 * A small seeded generator for built-in weights: the same seed gives the same model on every machine,
 * so tests and examples that train a tiny built-in model are reproducible. mulberry32 for uniform
 * 32-bit draws, Box-Muller for normals.
 */

export class Prng {
  private state: number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 2^32). */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in (0, 1): never 0, so the logarithm below is finite. */
  uniform(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  normal(mean = 0, std = 1): number {
    if (this.spare !== undefined) {
      const z = this.spare;
      this.spare = undefined;
      return mean + std * z;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const a = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(a);
    return mean + std * r * Math.cos(a);
  }
}
