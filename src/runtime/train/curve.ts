/** The loss curve as a small standalone SVG: train loss per step, eval loss as points. */
export function lossCurveSvg(losses: readonly number[], evals: readonly { step: number; loss: number }[], title: string): string {
  const W = 640;
  const H = 360;
  const L = 56;
  const R = 16;
  const T = 32;
  const Bm = 40;
  const all = [...losses, ...evals.map((e) => e.loss)].filter(Number.isFinite);
  const lo = all.length ? Math.min(...all) : 0;
  const hi = all.length ? Math.max(...all) : 1;
  const span = hi - lo || 1;
  const steps = Math.max(1, losses.length);
  const x = (step: number) => L + ((W - L - R) * (step - 1)) / Math.max(1, steps - 1);
  const y = (v: number) => T + (H - T - Bm) * (1 - (v - lo) / span);
  const pts = losses.map((v, i) => `${x(i + 1).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => lo + f * span);
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="20" font-size="13">${esc(title)}</text>`,
    ...ticks.map((v) => `<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e4e4e4"/><text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(3)}</text>`),
    `<line x1="${L}" x2="${L}" y1="${T}" y2="${H - Bm}" stroke="#888"/>`,
    `<line x1="${L}" x2="${W - R}" y1="${H - Bm}" y2="${H - Bm}" stroke="#888"/>`,
    `<text x="${L}" y="${H - Bm + 16}">1</text><text x="${W - R}" y="${H - Bm + 16}" text-anchor="end">${steps}</text>`,
    `<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">optimizer step</text>`,
    `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${pts}"/>`,
    ...evals.filter((e) => Number.isFinite(e.loss)).map((e) => `<circle cx="${x(e.step).toFixed(1)}" cy="${y(e.loss).toFixed(1)}" r="3.5" fill="#d62728"/>`),
    `<text x="${W - R}" y="20" text-anchor="end"><tspan fill="#1f77b4">train loss</tspan>  <tspan fill="#d62728">eval loss</tspan></text>`,
    `</svg>`,
    "",
  ].join("\n");
}
