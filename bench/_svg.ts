// A horizontal bar chart as SVG text, written by hand: no dependency.

/** One bar: its label, its value, and whether it is drawn as Tessera's. */
export interface Bar {
  label: string;
  value: number;
  highlight: boolean;
}

/** Bars under one heading. */
export interface BarGroup {
  title: string;
  bars: Bar[];
}

const WIDTH = 760;
const LABEL_WIDTH = 300;
const CHART_WIDTH = 380;
const BAR_HEIGHT = 14;
const ROW_HEIGHT = 20;
const GROUP_GAP = 28;
const TOP = 48;

/** Text made safe inside an SVG element or attribute. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(
      /"/g,
      "&quot;",
    );
}

/**
 * A chart of `groups` with a scale from 0 to the largest value (1 at
 * least), a grid line every quarter, and each value written after its bar.
 */
export function barChart(title: string, groups: readonly BarGroup[]): string {
  const values = groups.flatMap((group) => group.bars.map((bar) => bar.value));
  const scale = Math.max(1, ...values.filter(Number.isFinite));
  const rows = groups.reduce((sum, group) => sum + group.bars.length, 0);
  const height = TOP + rows * ROW_HEIGHT + groups.length * GROUP_GAP + 24;
  const x = (value: number) => LABEL_WIDTH + (Math.max(0, value) / scale) * CHART_WIDTH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${
      escapeXml(title)
    }</text>`,
  ];
  const gridBottom = height - 24;
  for (let tick = 0; tick <= scale + 1e-9; tick += 0.25) {
    const at = x(tick).toFixed(1);
    parts.push(
      `<line x1="${at}" y1="${TOP - 8}" x2="${at}" y2="${gridBottom}" stroke="${
        tick === 1 ? "#888888" : "#e2e2e2"
      }"/>`,
      `<text x="${at}" y="${gridBottom + 14}" text-anchor="middle" fill="#555555">${
        Number(tick.toFixed(2))
      }</text>`,
    );
  }
  let y = TOP;
  for (const group of groups) {
    parts.push(
      `<text x="8" y="${y + 10}" font-weight="bold">${escapeXml(group.title)}</text>`,
    );
    y += GROUP_GAP - 8;
    for (const bar of group.bars) {
      const end = x(bar.value);
      parts.push(
        `<text x="${LABEL_WIDTH - 8}" y="${y + 11}" text-anchor="end">${
          escapeXml(bar.label)
        }</text>`,
        `<rect x="${LABEL_WIDTH}" y="${y}" width="${
          (end - LABEL_WIDTH).toFixed(1)
        }" height="${BAR_HEIGHT}" fill="${bar.highlight ? "#2b6cb0" : "#a0aec0"}"/>`,
        `<text x="${(end + 4).toFixed(1)}" y="${y + 11}">${bar.value.toFixed(2)}</text>`,
      );
      y += ROW_HEIGHT;
    }
    y += 8;
  }
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
