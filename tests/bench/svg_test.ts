import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { barChart, escapeXml } from "../../bench/_svg.ts";

describe("escapeXml()", () => {
  it("escapes what would end an element or an attribute", () => {
    assert.equal(escapeXml(`a<b>&"c"`), "a&lt;b&gt;&amp;&quot;c&quot;");
  });
});

describe("barChart()", () => {
  const groups = [
    {
      title: "read",
      bars: [
        { label: "Tessera <MemoryStore>", value: 0.5, highlight: true },
        { label: "peer", value: 0.25, highlight: false },
      ],
    },
    { title: "write", bars: [{ label: "Tessera", value: 1, highlight: true }] },
  ];
  const svg = barChart("ratios", groups);
  const widths = [...svg.matchAll(/<rect x="300" y="\d+" width="([\d.]+)"/g)].map((match) =>
    Number(match[1])
  );

  it("is one svg element with a background and one bar per value", () => {
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" [^>]*>/);
    assert.match(svg, /<\/svg>\n$/);
    assert.equal(widths.length, 3);
  });

  it("draws bars in proportion, with 1 as the full width when nothing is larger", () => {
    assert.deepEqual(widths, [190, 95, 380]);
  });

  it("stretches the scale to the largest value above 1", () => {
    const wide = barChart("x", [{ title: "t", bars: [{ label: "a", value: 2, highlight: true }] }]);
    assert.match(wide, /width="380.0" height="14"/);
    assert.match(wide, />2<\/text>/);
  });

  it("writes labels escaped, titles and values", () => {
    assert.match(svg, />Tessera &lt;MemoryStore&gt;<\/text>/);
    assert.match(svg, />write<\/text>/);
    assert.match(svg, />0.50<\/text>/);
  });

  it("colours Tessera's bars apart from the others", () => {
    const fills = [...svg.matchAll(/height="14" fill="(#[0-9a-f]+)"/g)].map((match) => match[1]);
    assert.deepEqual(fills, ["#2b6cb0", "#a0aec0", "#2b6cb0"]);
  });
});
