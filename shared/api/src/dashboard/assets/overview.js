// The overview: every project with runs in the window, overall figures on top, kept live by
// the event stream. Accepts both summary shapes: the overall figures at the top level, or
// nested in `summary` (gitlab-summary's).
import {
  api, h, fill, mark, duration, percent, localTime, pageUrl, failure, remembered, remember,
  shortSha, ApiFailure,
} from './common.js';

const totals = document.getElementById('totals');
const projects = document.getElementById('projects');
const live = document.getElementById('live');
const filters = document.getElementById('filters');
const updated = document.getElementById('updated');
const WINDOWS = ['1d', '7d', '30d'];

let settings = { since: '7d', group: '' };
let serviceKeepsSettings = false;
let stream = null;
let reconnectTimer = null;
let lastSeen = new Map();

function setLive(state, text) {
  live.dataset.state = state;
  live.querySelector('.text').textContent = text;
}

function query() {
  const q = new URLSearchParams({ since: settings.since });
  if (settings.group) q.set('group', settings.group);
  return q;
}

/** The window and group: this browser's last choice, else the service's settings (the
 *  deployment's defaults, `/api/settings`). */
async function loadSettings() {
  let service = null;
  if (document.body.dataset.settings === 'true') {
    try {
      ({ body: service } = await api('/api/settings'));
      serviceKeepsSettings = true;
    } catch (error) {
      if (error instanceof ApiFailure && error.status === 401) throw error;
    }
  }
  const since = remembered('since', null) ?? service?.since;
  settings = {
    since: WINDOWS.includes(since) ? since : '7d',
    group: remembered('group', null) ?? (typeof service?.group === 'string' ? service.group : ''),
  };
  if (service?.group) filters.group.placeholder = `default: ${service.group}`;
  filters.since.value = settings.since;
  filters.group.value = settings.group;
}

/** Kept in this browser; an admin's choice also becomes the deployment's default. */
async function saveSettings() {
  remember('since', settings.since);
  remember('group', settings.group);
  if (serviceKeepsSettings && document.body.dataset.admin === 'true') {
    try {
      await api('/api/settings', { json: { since: settings.since, group: settings.group } });
    } catch { /* kept in this browser anyway */ }
  }
}

function figure(label, value, title) {
  return h('div', { class: 'figure', title }, h('span', { class: 'value' }, value), h('span', { class: 'label' }, label));
}

function runTitle(run) {
  const id = run.id ?? run.pipeline_id;
  const parts = [`${run.kind === 'build' ? 'build' : 'pipeline'} #${id}`];
  if (run.ref) parts.push(run.ref);
  if (run.sha) parts.push(shortSha(run.sha));
  if (run.created_at) parts.push(localTime(run.created_at));
  const seconds = run.duration_ms != null ? run.duration_ms / 1000 : run.duration;
  if (seconds != null) parts.push(duration(seconds));
  return parts.join(' · ');
}

function runLink(project, run) {
  const id = run.id ?? run.pipeline_id;
  if (run.kind === 'build') return pageUrl('repo', { repo: project.project_name });
  return pageUrl('pipeline', { project: project.project_name ?? project.project_id, id, provider: run.provider ?? 'gitlab' });
}

function averageDuration(project) {
  const finished = (project.successful ?? 0) + (project.failed ?? 0);
  if (project.average_duration != null) return project.average_duration;
  return finished > 0 && project.total_duration ? project.total_duration / finished : null;
}

function rateCell(rate) {
  const bar = h('span', { class: 'bar', 'aria-hidden': 'true' }, h('span'));
  if (rate != null) bar.firstChild.style.width = `${Math.max(0, Math.min(100, rate))}%`;
  return h('span', { class: 'rate' }, h('span', { class: 'mono' }, percent(rate)), bar);
}

function emptyState() {
  const origin = location.origin;
  const filtered = settings.group ? ` under “${settings.group}”` : '';
  return h('div', { class: 'empty' },
    h('h2', {}, `No pipelines in the ${settings.since === '1d' ? 'last day' : `last ${settings.since.replace('d', ' days')}`}${filtered}`),
    h('p', {}, 'buildlore learns about pipelines from webhooks and from your CI jobs. To see projects here:'),
    h('ol', {},
      h('li', {}, 'In GitLab (project or group → Settings → Webhooks) add ', h('code', {}, `${origin}/webhooks/gitlab`),
        ' with the webhook secret token and the Pipeline and Job events; in GitHub add ', h('code', {}, `${origin}/webhooks/github`),
        ' with Workflow runs and Workflow jobs.'),
      h('li', {}, 'Or record a build from any CI job with an ingest key:')),
    h('pre', {}, `curl -X POST ${origin}/api/v1/builds \\\n  -H "Authorization: Bearer $BUILDLORE_INGEST_KEY" -H 'Content-Type: application/json' \\\n  -d '{"build_id":"1","repo":"group/app","branch":"main","status":"success"}'`),
    settings.group ? h('p', {}, 'Or clear the group filter to see every project.') : null);
}

function render(data) {
  const overall = data?.summary ?? data ?? {};
  const list = Array.isArray(data?.projects) ? data.projects : [];
  fill(totals,
    figure('Pipelines', String(overall.total_pipelines ?? 0)),
    figure('Passed', String(overall.successful ?? 0)),
    figure('Failed', String(overall.failed ?? 0)),
    figure('Running or pending', String(overall.running ?? 0)),
    figure('Success rate', percent(overall.overall_success_rate), 'Share of finished runs that passed'),
    figure('Average duration', duration(overall.average_duration)));

  const groups = new Set();
  for (const project of list) {
    const path = String(project.project_name ?? project.project_id);
    if (path.includes('/')) groups.add(path.split('/')[0]);
  }
  fill(document.getElementById('groups'), [...groups].sort().map((group) => h('option', { value: group })));

  if (list.length === 0) {
    fill(projects, emptyState());
    lastSeen = new Map();
    return;
  }
  const seen = new Map();
  const rows = list.map((project) => {
    const path = String(project.project_name ?? project.project_id);
    const runs = Array.isArray(project.recent_pipelines) ? project.recent_pipelines : [];
    const signature = JSON.stringify([project.total_pipelines, project.failed, project.running, runs.map((r) => [r.id, r.status])]);
    seen.set(path, signature);
    const changed = lastSeen.size > 0 && lastSeen.get(path) !== signature;
    const failedText = String(project.failed ?? 0);
    return h('tr', { class: changed ? 'changed' : null, 'data-project': path },
      h('td', { class: 'first' }, h('a', { class: 'project-name', href: pageUrl('repo', { repo: path }) }, path)),
      h('td', { 'data-label': 'Success rate' }, rateCell(project.success_rate)),
      h('td', { class: 'num', 'data-label': 'Pipelines' }, String(project.total_pipelines ?? 0)),
      h('td', { class: 'num', 'data-label': 'Failed' }, project.failed ? h('strong', {}, failedText) : failedText),
      h('td', { class: 'num', 'data-label': 'Running' }, String(project.running ?? 0)),
      h('td', { class: 'num', 'data-label': 'Avg duration' }, duration(averageDuration(project))),
      h('td', { 'data-label': 'Recent' },
        h('span', { class: 'marks' }, runs.map((run) => mark(run.status, runTitle(run), runLink(project, run))))));
  });
  lastSeen = seen;
  fill(projects, h('table', { class: 'cards' },
    h('caption', { class: 'visually-hidden' }, 'Projects with pipelines in the window; the newest runs last column, newest first'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Project'),
      h('th', { scope: 'col' }, 'Success rate'),
      h('th', { scope: 'col', class: 'num' }, 'Pipelines'),
      h('th', { scope: 'col', class: 'num' }, 'Failed'),
      h('th', { scope: 'col', class: 'num' }, 'Running'),
      h('th', { scope: 'col', class: 'num' }, 'Avg duration'),
      h('th', { scope: 'col' }, 'Recent pipelines'))),
    h('tbody', {}, rows)));
  updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.rendered = String(Number(document.body.dataset.rendered ?? 0) + 1);
  // When the first full render finished, in ms since navigation started (the render budget).
  document.body.dataset.firstRenderMs ??= String(Math.round(performance.now()));
}

async function load() {
  try {
    const asked = performance.now();
    const { body } = await api(`/api/pipelines/summary?${query()}`);
    // How long the service took to answer, beside the first render's time (the render budget).
    document.body.dataset.summaryMs ??= String(Math.round(performance.now() - asked));
    render(body);
  } catch (error) {
    if (error.status !== 401) failure(totals, error, 'The summary could not be loaded');
  }
}

/** The event stream: a `pipeline-update` carries the whole summary. The browser reconnects by
 *  itself after a dropped connection; a refused one (session ended, too many streams) is
 *  retried here, after checking the session with an ordinary request. */
function connect() {
  clearTimeout(reconnectTimer);
  stream?.close();
  setLive('connecting', 'Connecting…');
  stream = new EventSource(`/api/events/pipelines?${query()}`);
  stream.addEventListener('open', () => setLive('live', 'Live'));
  stream.addEventListener('pipeline-update', (event) => {
    setLive('live', 'Live');
    try { render(JSON.parse(event.data)); } catch { /* a malformed event changes nothing */ }
  });
  stream.addEventListener('error', () => {
    setLive('reconnecting', 'Reconnecting…');
    if (stream.readyState === EventSource.CLOSED) {
      reconnectTimer = setTimeout(async () => {
        await load();
        connect();
      }, 5000);
    }
  });
}

filters.addEventListener('submit', async (event) => {
  event.preventDefault();
  settings = { since: filters.since.value, group: filters.group.value.trim().replace(/^\/+|\/+$/g, '') };
  lastSeen = new Map();
  await saveSettings();
  await load();
  connect();
});

window.addEventListener('pagehide', () => stream?.close());

try {
  await loadSettings();
  await load();
  connect();
} catch (error) {
  if (error.status !== 401) failure(totals, error, 'The overview could not be loaded');
}

