import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DemoResult } from '../results.js';
import { reportCharts } from './charts.js';
import { reportHtml } from './html.js';
import { reportMarkdown } from './markdown.js';
import { renderSvg } from './render.js';

/** The files a report consists of, relative to the output folder. */
export interface ReportFiles {
  markdown: string;
  html: string;
  json: string;
  charts: string[];
}

/** Writes report.md, report.html, results.json and charts/*.svg under `out`. */
export async function writeReport(r: DemoResult, out: string): Promise<ReportFiles> {
  const charts = reportCharts(r);
  await mkdir(join(out, 'charts'), { recursive: true });
  for (const c of charts) await writeFile(join(out, 'charts', c.file), await renderSvg(c.spec));
  const md = reportMarkdown(r, charts);
  await writeFile(join(out, 'report.md'), md);
  await writeFile(join(out, 'report.html'), reportHtml(md));
  await writeFile(join(out, 'results.json'), JSON.stringify(r, null, 2));
  return { markdown: 'report.md', html: 'report.html', json: 'results.json', charts: charts.map((c) => `charts/${c.file}`) };
}
