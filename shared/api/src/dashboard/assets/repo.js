// One repository: success rate and duration p50/p90 per day, MTTR, red branches, flaky jobs,
// and from test reports its failing and flaky tests and the quarantine list.
import { api, h, fill, duration, percent, pageUrl, param, failure, ago, shortSha } from './common.js';
import { lineChart } from './charts.js';

const container = document.getElementById('repo');
const windowForm = document.getElementById('repo-window');
const repo = param('repo');
const since = ['7d', '30d', '90d'].includes(param('since')) ? param('since') : '30d';
windowForm.since.value = since;
windowForm.since.addEventListener('change', () => {
  location.assign(pageUrl('repo', { repo, since: windowForm.since.value }));
});

function figure(label, value, note) {
  return h('div', { class: 'figure' }, h('span', { class: 'value' }, value), h('span', { class: 'label' }, label), note ? h('div', { class: 'hint' }, note) : null);
}

function change(value) {
  if (value === null || value === undefined) return null;
  const sign = value > 0 ? '▲ +' : value < 0 ? '▼ ' : '';
  return `${sign}${value} points against the window before`;
}

function dayLabel(day) {
  const date = new Date(`${day}T00:00:00Z`);
  return new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' }).format(date);
}

function charts(daily) {
  if (!daily?.length) return null;
  const labels = daily.map((d) => dayLabel(d.day));
  return h('div', { class: 'charts' },
    lineChart({
      title: 'Success rate per day',
      labels,
      max: 100,
      format: (v) => `${Math.round(v)}%`,
      series: [{ name: 'success rate', values: daily.map((d) => d.success_rate), colour: '#1a7436' }],
    }),
    lineChart({
      title: 'Duration per day',
      labels,
      // Whole minutes and hours on the axis.
      steps: [60, 120, 240, 600, 1200, 1800, 2400, 3600, 7200, 10800, 14400, 21600, 43200, 86400],
      format: (v) => duration(v),
      series: [
        { name: 'p50', values: daily.map((d) => d.duration_p50), colour: '#0b5cc4' },
        { name: 'p90', values: daily.map((d) => d.duration_p90), colour: '#9a3c00', dashed: true, shape: 'square' },
      ],
    }));
}

function list(title, items, render, empty) {
  return h('section', { class: 'card' }, h('h2', {}, title),
    items.length ? h('ul', { class: 'plain' }, items.map((item) => h('li', {}, render(item)))) : h('p', { class: 'hint' }, empty));
}

function testLine(test) {
  return [h('span', { class: 'mono' }, `${test.suite ? `${test.suite} › ` : ''}${test.name}`),
    h('span', { class: 'hint' }, ` · ${test.failures ?? 0} failures, ${test.flaky_runs ?? 0} flaky of ${test.runs ?? 0} runs`)];
}

async function main() {
  if (!repo) {
    fill(container, h('p', { class: 'error' }, 'This page needs a repository: open it from the overview.'));
    return;
  }
  document.getElementById('repo-title').textContent = repo;
  document.title = `${repo} · buildlore`;
  const encoded = encodeURIComponent(repo);
  let analysis;
  try {
    ({ body: analysis } = await api(`/api/v1/repos/${encoded}/analysis?since=${since}`));
  } catch (error) {
    if (error.status === 404) {
      fill(container, h('div', { class: 'empty' }, h('h2', {}, `No runs of ${repo} in this window`),
        h('p', {}, 'Pick a longer window, or check that webhooks or build records for this repository reach the service.')));
      return;
    }
    throw error;
  }
  const quiet = (promise) => promise.then((r) => r.body).catch((error) => { if (error.status === 401) throw error; return null; });
  const [quarantine] = await Promise.all([quiet(api(`/api/v1/repos/${encoded}/quarantine`))]);
  const tests = analysis.tests ?? {};
  const mttr = analysis.mttr ?? {};
  fill(container,
    h('section', { class: 'totals', 'aria-label': 'Figures' },
      figure('Runs', String(analysis.total_runs ?? 0)),
      figure('Success rate', percent(analysis.success_rate), change(analysis.success_rate_change)),
      figure('Duration p50', duration(analysis.duration_p50)),
      figure('Duration p90', duration(analysis.duration_p90)),
      figure(`MTTR on ${mttr.branch ?? 'main'}`, duration(mttr.mean_seconds), mttr.recoveries ? `${mttr.recoveries} recoveries` : 'no red streak ended'),
      figure('Red branches', String(analysis.red_branches?.length ?? 0))),
    charts(analysis.daily),
    h('div', { class: 'grid2' },
      list('Red branches', analysis.red_branches ?? [], (branch) => [h('span', { class: 'status s-failed' }, h('span', { class: 'icon', 'aria-hidden': 'true' }, '✕'), 'failed'), ' ', h('span', { class: 'mono' }, branch)], 'Every branch\u2019s latest finished run passed.'),
      list('Failures by branch', Object.entries(analysis.failures_by_branch ?? {}).sort((a, b) => b[1] - a[1]), ([branch, count]) => [h('span', { class: 'mono' }, branch), h('span', { class: 'hint' }, ` · ${count} failed runs`)], 'No failed runs in this window.'),
      list('Flaky jobs (failed and passed on one commit)', analysis.flaky_candidates ?? [], (c) => [h('b', {}, c.job), h('span', { class: 'hint' }, ` · ${shortSha(c.sha)} · ${c.failed} failed, ${c.passed} passed`)], 'No job both failed and passed on the same commit.'),
      list('Top recurring failures', analysis.top_failures ?? [], (f) => [h('a', { href: pageUrl('failures', { repo, since }) }, f.root_cause ?? f.category ?? 'failure'), h('span', { class: 'hint' }, ` · ${f.count} jobs · last `), ago(f.last_seen)], 'No analysed failures in this window.'),
      list(`Flaky tests (${tests.flaky ?? 0})`, tests.top_flaky_tests ?? [], testLine, 'No flaky tests: they appear once JUnit reports are uploaded and a test both fails and passes.'),
      list(`Failing tests (${tests.failing ?? 0})`, tests.top_failing_tests ?? [], testLine, 'No failing tests tracked.'),
      list('Quarantine', quarantine?.tests ?? [], (t) => [h('span', { class: 'mono' }, t.name), h('span', { class: 'hint' }, ` · ${t.quarantine?.reason ?? ''}${t.quarantine?.owner ? ` (${t.quarantine.owner})` : ''}`)], 'No test is quarantined.')));
  container.dataset.ready = 'true';
}

main().catch((error) => { if (error.status !== 401) failure(container, error, 'The repository could not be loaded'); });
