// Recurring failures of a repository by fingerprint (count, first and last seen, branches,
// latest root cause), each opening the analysed jobs that share it.
import { api, h, fill, ago, localTime, pageUrl, param, failure, remembered, remember } from './common.js';

const container = document.getElementById('failures');
const form = document.getElementById('repo-pick');
const repo = param('repo');
const since = ['7d', '30d', '90d'].includes(param('since')) ? param('since') : '30d';
form.repo.value = repo;
form.since.value = since;

async function offerRepos() {
  try {
    const { body } = await api(`/api/pipelines/summary?since=${encodeURIComponent(remembered('since', '7d'))}`);
    const projects = (body.projects ?? []).map((p) => String(p.project_name ?? p.project_id));
    fill(document.getElementById('repos'), projects.map((path) => h('option', { value: path })));
    return projects;
  } catch (error) {
    if (error.status === 401) throw error;
    return [];
  }
}

function jobsOf(fingerprint, analyses) {
  return analyses.filter((analysis) => analysis.fingerprint === fingerprint);
}

function render(failures, analyses) {
  if (failures.length === 0) {
    fill(container, h('div', { class: 'empty' },
      h('h2', {}, `No recurring failures in ${repo}`),
      h('p', {}, 'Failures are grouped once their jobs are analysed: push failed jobs\u2019 logs to ', h('code', {}, '/api/ingest/log'),
        ' (or ask for an analysis from a job\u2019s page) and they appear here by fingerprint.')));
    return;
  }
  fill(container, failures.map((item) => {
    const jobs = jobsOf(item.fingerprint, analyses);
    return h('details', { class: 'failure' },
      h('summary', {},
        h('span', { class: 'count' }, String(item.count), h('small', {}, item.count === 1 ? 'job' : 'jobs')),
        h('span', {},
          h('span', { class: 'cause' }, item.root_cause ?? 'No root cause recorded yet'),
          h('span', { class: 'chips' },
            h('span', { class: 'chip' }, item.category),
            (item.branches ?? []).map((branch) => h('span', { class: 'chip mono' }, branch)),
            h('span', { class: 'chip mono', title: 'fingerprint' }, `#${String(item.fingerprint).slice(0, 10)}`))),
        h('span', { class: 'hint' }, 'last ', ago(item.last_seen), h('br'), 'first ', ago(item.first_seen))),
      h('div', { class: 'body' },
        item.failed_tests?.length ? h('p', {}, 'Failed tests: ', item.failed_tests.map((t) => h('code', {}, t, ' '))) : null,
        h('ul', { class: 'plain' },
          (jobs.length ? jobs : [{ jobId: item.latest_job_id, provider: item.provider }]).map((job) => h('li', {},
            h('a', { href: pageUrl('job', { provider: job.provider ?? 'gitlab', project: repo, job: job.jobId, pipeline: job.pipelineId }) },
              `${job.jobName ?? 'job'} #${job.jobId}`),
            job.analysed_at ? h('span', { class: 'hint' }, ` · ${localTime(job.analysed_at)}`) : null)))));
  }));
}

async function main() {
  const projects = await offerRepos();
  if (!repo) {
    fill(container, projects.length
      ? h('div', {}, h('p', {}, 'Choose a repository:'), h('ul', { class: 'plain card' }, projects.map((path) =>
        h('li', {}, h('a', { href: pageUrl('failures', { repo: path, since }) }, path)))))
      : h('div', { class: 'empty' }, h('p', {}, 'No projects have reported pipelines yet; the overview says how to connect one.')));
    return;
  }
  remember('failures-repo', repo);
  document.title = `Failures · ${repo} · buildlore`;
  const [{ body: found }, analysed] = await Promise.all([
    api(`/api/v1/failures?repo=${encodeURIComponent(repo)}&since=${since}`),
    api(`/api/ai/analyzed?projectId=${encodeURIComponent(repo)}`).then((r) => r.body).catch((error) => {
      if (error.status === 401) throw error;
      return { analyses: [] };
    }),
  ]);
  render(found.failures ?? [], analysed.analyses ?? []);
  container.dataset.ready = 'true';
}

main().catch((error) => { if (error.status !== 401) failure(container, error, 'The failures could not be loaded'); });
