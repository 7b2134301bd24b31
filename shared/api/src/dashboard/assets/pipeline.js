// A pipeline: its jobs by stage with status, duration, user and commit, and links to the
// provider's pages. Accepts both details shapes: `{pipeline, user, commit, jobs}` and the flat
// gitlab-summary one.
import { api, h, fill, badge, duration, localTime, pageUrl, param, failure, avatar, shortSha, statusKey } from './common.js';

const container = document.getElementById('pipeline');
const crumbs = document.getElementById('crumbs');
const project = param('project');
const pipelineId = param('id');
const provider = param('provider') || 'gitlab';

function providerName() {
  return provider === 'github' ? 'GitHub' : provider === 'gitlab' ? 'GitLab' : provider;
}

const USUAL_STAGES = ['.pre', 'build', 'test', 'deploy', '.post'];

/** Jobs by stage, stages in the order they ran (the first start among their jobs; stages
 *  that have not started yet last, in GitLab's usual order). */
function stagesOf(jobs) {
  const stages = new Map();
  for (const job of jobs) {
    const stage = job.stage || (provider === 'github' ? 'jobs' : 'other');
    if (!stages.has(stage)) stages.set(stage, []);
    stages.get(stage).push(job);
  }
  const started = (list) => Math.min(...list.map((job) => (job.started_at ? Date.parse(job.started_at) : Infinity)));
  const usual = (stage) => { const at = USUAL_STAGES.indexOf(stage); return at < 0 ? 2.5 : at; };
  const byName = (a, b) => String(a.name).localeCompare(String(b.name));
  return new Map([...stages]
    .map(([stage, list]) => [stage, list.sort(byName)])
    .sort(([a, x], [b, y]) => (started(x) - started(y)) || (usual(a) - usual(b)) || a.localeCompare(b)));
}

function stageStatus(jobs) {
  const keys = jobs.map((job) => statusKey(job.status));
  for (const key of ['failed', 'running', 'pending', 'manual', 'canceled']) {
    if (keys.includes(key)) return key === 'failed' && jobs.every((j) => statusKey(j.status) !== 'failed' || j.allow_failure) ? 'success' : key;
  }
  return keys.every((key) => key === 'skipped') ? 'skipped' : 'success';
}

function render(details) {
  const pipeline = details.pipeline ?? details;
  const user = details.user ?? pipeline.user;
  const commit = details.commit ?? pipeline.commit;
  const jobs = Array.isArray(details.jobs) ? details.jobs : [];
  const repo = pipeline.repo ?? project;
  const id = pipeline.id ?? pipeline.pipeline_id ?? pipelineId;
  const url = pipeline.url ?? pipeline.web_url;
  document.title = `Pipeline #${id} · ${repo} · buildlore`;
  fill(crumbs, h('a', { href: '/' }, 'Overview'), h('a', { href: pageUrl('repo', { repo }) }, repo), h('span', {}, `Pipeline #${id}`));

  const stages = stagesOf(jobs);
  fill(container,
    h('div', { class: 'titlebar' }, h('h1', {}, `Pipeline #${id}`), badge(pipeline.status),
      url ? h('a', { href: url, rel: 'noreferrer', target: '_blank' }, `Open in ${providerName()} ↗`) : null),
    h('div', { class: 'facts' },
      h('span', {}, 'Ref ', h('b', { class: 'mono' }, pipeline.ref ?? '—')),
      pipeline.sha || commit?.id ? h('span', {}, 'Commit ', commit?.url
        ? h('a', { class: 'mono', href: commit.url, rel: 'noreferrer', target: '_blank' }, shortSha(pipeline.sha ?? commit.id))
        : h('b', { class: 'mono' }, shortSha(pipeline.sha ?? commit.id))) : null,
      commit?.title ? h('span', {}, h('b', {}, commit.title)) : null,
      user ? h('span', {}, avatar(user), h('b', {}, user.name ?? user.username), user.username && user.name ? ` @${user.username}` : '') : null,
      pipeline.source ? h('span', {}, 'Source ', h('b', {}, pipeline.source)) : null,
      h('span', {}, 'Created ', h('b', {}, localTime(pipeline.created_at))),
      pipeline.finished_at ? h('span', {}, 'Finished ', h('b', {}, localTime(pipeline.finished_at))) : null,
      h('span', {}, 'Duration ', h('b', {}, duration(pipeline.duration)))),
    jobs.length === 0
      ? h('p', { class: 'empty' }, 'No jobs of this pipeline have been reported yet. They appear when GitLab sends Job events (or GitHub workflow_job events) to the webhook.')
      : h('div', { class: 'stages' }, [...stages].map(([stage, stageJobs]) =>
        h('section', { class: 'card stage', 'aria-label': `Stage ${stage}` },
          h('h2', {}, h('span', {}, stage), badge(stageStatus(stageJobs))),
          h('ul', { class: 'jobs' }, stageJobs.map((job) => {
            const jobId = job.id ?? job.job_id;
            const jobUrl = job.url ?? job.web_url;
            return h('li', {},
              badge(job.status),
              h('a', { class: 'name', href: pageUrl('job', { provider, project: repo, job: jobId, pipeline: id }) }, job.name),
              h('span', { class: 'hint' }, duration(job.duration)),
              job.allow_failure ? h('span', { class: 'chip' }, 'allowed to fail') : null,
              job.failure_reason ? h('span', { class: 'chip' }, job.failure_reason.replaceAll('_', ' ')) : null,
              jobUrl ? h('a', { href: jobUrl, rel: 'noreferrer', target: '_blank', 'aria-label': `${job.name} in ${providerName()}` }, '↗') : null);
          }))))));
}

if (!project || !pipelineId) {
  fill(container, h('p', { class: 'error' }, 'This page needs a project and a pipeline id: open it from the overview.'));
} else {
  try {
    const query = provider === 'gitlab' ? '' : `?provider=${encodeURIComponent(provider)}`;
    const { body } = await api(`/api/pipelines/${encodeURIComponent(project)}/details/${encodeURIComponent(pipelineId)}${query}`);
    render(body);
  } catch (error) {
    if (error.status !== 401) failure(container, error, 'The pipeline could not be loaded');
  }
}
