import { marked } from 'marked';

/** report.html: the Markdown report rendered (marked), charts linked as images, readable in any browser. */
export function reportHtml(markdown: string): string {
  const body = marked.parse(markdown, { async: false, gfm: true });
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Kiln demo report</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; }
td { font-variant-numeric: tabular-nums; }
img { max-width: 100%; display: block; margin: 1rem 0; }
code { background: #f4f4f4; padding: 0 0.2rem; }
</style>
</head>
<body>
${body}
</body>
</html>
`;
}
