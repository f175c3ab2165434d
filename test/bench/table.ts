/** One figure of `npm run bench`: what was measured, its baseline in the same run, and the ratio between them. */
export interface Row {
  section: string;
  label: string;
  value: number;
  unit: string;
  /** What the ratio is taken against (a row's label), if any. */
  baseline?: string;
  ratio?: number;
  /** The ratio this figure should reach (≥), or, for a ceiling, the value it should stay under (<). */
  goal?: { atLeast?: number; below?: number };
  note?: string;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const met = (r: Row) => {
  if (!r.goal) return '';
  if (r.goal.atLeast !== undefined) return `${(r.ratio ?? 0) >= r.goal.atLeast ? 'met' : 'MISSED'} (≥ ${r.goal.atLeast}×)`;
  return `${r.value < r.goal.below! ? 'met' : 'MISSED'} (< ${r.goal.below} ${r.unit})`;
};

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

/** Prints every row in one table, grouped by section. */
export function printTable(rows: readonly Row[]): void {
  const width = Math.max(...rows.map((r) => r.label.length)) + 2;
  const based = Math.max(8, ...rows.map((r) => (r.baseline ?? '').length));
  let section = '';
  console.log(`\n${'figure'.padEnd(width)} ${'value'.padStart(9)} ${'unit'.padEnd(6)} ${'ratio'.padStart(7)}  ${'baseline'.padEnd(based)} goal`);
  for (const r of rows) {
    if (r.section !== section) {
      section = r.section;
      console.log(`\n${section}`);
    }
    const ratio = r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}×`;
    console.log(`${`  ${r.label}`.padEnd(width)} ${fmt(r.value).padStart(9)} ${r.unit.padEnd(6)} ${ratio.padStart(7)}  ${(r.baseline ?? '').padEnd(based)} ${met(r)}${r.note ? `  ${r.note}` : ''}`);
  }
}
