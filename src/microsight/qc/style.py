"""The inline style sheet of the HTML reports (no web fonts, no external files)."""

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-alt: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 2rem 1.5rem 4rem; }
header { border-bottom: 1px solid var(--line); margin-bottom: 1.5rem; padding-bottom: 1rem; }
h1 { font-size: 1.8rem; margin: 0 0 .3rem; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .8rem; padding-bottom: .3rem;
  border-bottom: 1px solid var(--line); }
.subtitle { font-size: 1.05rem; color: var(--muted); margin: 0 0 .4rem; }
.meta { font-size: .85rem; color: var(--muted); margin: 0; }
nav.toc { background: var(--bg-alt); border: 1px solid var(--line); border-radius: 6px;
  padding: .6rem 1.2rem; display: inline-block; min-width: 16rem; }
nav.toc ol { margin: .3rem 0; padding-left: 1.3rem; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
.scroll { overflow-x: auto; max-width: 100%; margin: .5rem 0; }
table { border-collapse: collapse; margin: 0; font-size: .92rem; }
th, td { border: 1px solid var(--line); padding: .3rem .7rem; text-align: left;
  vertical-align: top; }
th { background: var(--bg-alt); font-weight: 600; }
td { overflow-wrap: break-word; }
td.long { min-width: 14rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { width: 14rem; }
table.kv td { overflow-wrap: anywhere; }
abbr[title] { text-decoration: underline dotted; cursor: help; }
dl.glossary dt { font-weight: 600; margin-top: .5rem; }
dl.glossary dd { margin: 0 0 0 1.5rem; }
.note, figcaption { font-size: .88rem; color: var(--muted); }
pre { background: var(--bg-alt); border: 1px solid var(--line); border-radius: 6px;
  padding: .8rem 1rem; overflow-x: auto; font-size: .85rem; line-height: 1.45; }
figure { margin: .5rem 0; }
figure img { max-width: 100%; height: auto; }
footer { margin-top: 3rem; font-size: .8rem; color: var(--muted); }
.verdict { border: 1px solid var(--line); border-left: 6px solid var(--muted);
  border-radius: 6px; padding: .6rem 1rem; margin: .5rem 0; background: var(--bg-alt); }
.verdict p { margin: .3rem 0; }
.verdict strong { text-transform: uppercase; font-size: .85rem; letter-spacing: .03em; }
.verdict p.rule { font-size: .88rem; color: var(--muted); }
.verdict.ok { border-left-color: #1a7f37; } .verdict.info { border-left-color: #0969da; }
.verdict.warn { border-left-color: #bf8700; } .verdict.bad { border-left-color: #cf222e; }
"""
