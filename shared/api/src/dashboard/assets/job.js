// A job: its log opened at the triage's excerpt, the analysis beside it (evidence lines
// linked to the log), the follow-up conversation, and the test report when there is one.
import {
  api, h, fill, badge, duration, localTime, pageUrl, param, failure, jobQuery, ago, statusKey, ApiFailure,
} from './common.js';
import { renderLog, attachSearch } from './logview.js';

const provider = param('provider') || 'gitlab';
const project = param('project');
const jobId = param('job');
const pipelineId = param('pipeline');
const head = document.getElementById('job-head');
const logBox = document.getElementById('log');
const tools = document.getElementById('log-tools');
const analysisBox = document.getElementById('analysis');
const followupBox = document.getElementById('followup');
const testsBox = document.getElementById('tests');
const crumbs = document.getElementById('crumbs');
const target = jobQuery(provider, project, jobId);

let viewer = null;
let excerpt = [];
let evidence = [];
let job = null;

function aiBody(extra) {
  const body = { jobId, ...extra };
  if (provider === 'github') Object.assign(body, { provider: 'github', repo: project });
  else body.projectId = project;
  if (pipelineId) body.pipelineId = pipelineId;
  return body;
}

/** The structured analysis, whichever shape the answer has (the object itself in
 *  `analysis`, or gitlab-summary's markdown text there and the object beside it). */
function structured(answer) {
  if (answer?.analysis && typeof answer.analysis === 'object') return answer.analysis;
  return answer?.structured ?? answer?.result ?? null;
}

async function loadJobFacts() {
  if (!pipelineId) return null;
  try {
    const query = provider === 'gitlab' ? '' : `?provider=${encodeURIComponent(provider)}`;
    const { body } = await api(`/api/pipelines/${encodeURIComponent(project)}/details/${encodeURIComponent(pipelineId)}${query}`);
    return (body.jobs ?? []).find((j) => String(j.id ?? j.job_id) === String(jobId)) ?? null;
  } catch (error) {
    if (error.status === 401) throw error;
    return null;
  }
}

function renderHead() {
  const name = job?.name ?? `Job ${jobId}`;
  document.title = `${name} · ${project} · buildlore`;
  fill(crumbs,
    h('a', { href: '/' }, 'Overview'),
    h('a', { href: pageUrl('repo', { repo: project }) }, project),
    pipelineId ? h('a', { href: pageUrl('pipeline', { project, id: pipelineId, provider }) }, `Pipeline #${pipelineId}`) : null,
    h('span', {}, name));
  const url = job?.url ?? job?.web_url;
  fill(head,
    h('div', { class: 'titlebar' },
      h('h1', {}, name), job ? badge(job.status) : null,
      url ? h('a', { href: url, rel: 'noreferrer', target: '_blank' }, `Open in ${provider === 'github' ? 'GitHub' : 'GitLab'} ↗`) : null),
    job ? h('div', { class: 'facts' },
      h('span', {}, 'Job ', h('b', { class: 'mono' }, `#${jobId}`)),
      job.stage ? h('span', {}, 'Stage ', h('b', {}, job.stage)) : null,
      job.ref ? h('span', {}, 'Ref ', h('b', { class: 'mono' }, job.ref)) : null,
      h('span', {}, 'Duration ', h('b', {}, duration(job.duration))),
      job.finished_at ? h('span', {}, 'Finished ', h('b', {}, localTime(job.finished_at))) : null,
      job.failure_reason ? h('span', {}, 'Reason ', h('b', {}, job.failure_reason.replaceAll('_', ' '))) : null,
      job.runner?.name ? h('span', {}, 'Runner ', h('b', {}, job.runner.name)) : null) : null);
}

async function loadLog() {
  let trace;
  try {
    ({ body: trace } = await api(`/api/jobtrace?${target}`));
  } catch (error) {
    if (error.status !== 401) failure(logBox, error, 'The log could not be loaded');
    return;
  }
  const text = trace?.trace ?? '';
  if (!text) {
    fill(logBox, h('p', { class: 'loading' }, 'The log is empty.'));
    return;
  }
  viewer = renderLog(logBox, text, excerpt);
  // The lines the analysis cites stand out from the rest of the excerpt.
  for (const n of evidence) viewer.rows[n - 1]?.classList.add('ev');
  const search = h('input', { type: 'search', placeholder: 'Search the log', 'aria-label': 'Search the log' });
  const counter = h('span', { class: 'count', role: 'status', 'aria-live': 'polite' });
  const previous = h('button', { type: 'button', 'aria-label': 'Previous match' }, '↑');
  const next = h('button', { type: 'button', 'aria-label': 'Next match' }, '↓');
  fill(tools,
    search, previous, next, counter,
    excerpt.length ? h('button', { type: 'button', onclick: () => viewer.reveal(excerpt[0].start_line, { mark: false, block: 'start' }) }, 'Excerpt') : null,
    viewer.hasSections ? h('button', { type: 'button', onclick: () => viewer.expandAll(true) }, 'Expand all') : null,
    viewer.hasSections ? h('button', { type: 'button', onclick: () => viewer.expandAll(false) }, 'Collapse all') : null,
    h('span', { class: 'hint' }, `${viewer.count.toLocaleString()} lines`),
    h('a', { href: `/api/jobtrace?${target}&format=raw`, target: '_blank' }, 'Raw'),
    trace.next_offset != null ? h('span', { class: 'hint' }, '(first part of a long log; the raw log has all of it)') : null);
  attachSearch(viewer, search, counter, previous, next);
  const line = Number(location.hash.replace(/^#L/, ''));
  if (line) viewer.reveal(line);
  else if (excerpt.length) viewer.reveal(excerpt[0].start_line, { mark: false, block: 'start' });
  logBox.dataset.ready = 'true';
}

function evidenceLink(n) {
  return h('a', {
    href: `#L${n}`,
    class: 'mono',
    onclick: (event) => { event.preventDefault(); viewer?.reveal(n); history.replaceState(null, '', `#L${n}`); },
  }, `L${n}`);
}

function renderAnalysis(answer) {
  const result = structured(answer);
  evidence = (result?.evidence_lines ?? []).map(Number).filter((n) => n > 0);
  const markdown = typeof answer.analysis === 'string' ? answer.analysis : null;
  const failedTests = answer.failed_tests ?? [];
  const parts = [h('h2', {}, 'Analysis')];
  if (answer.status === 'failed') {
    parts.push(h('p', { class: 'error' }, `The analysis failed: ${answer.error ?? 'no reason given'}`));
  }
  if (result) {
    parts.push(
      h('h3', { class: 'cause' }, result.root_cause),
      h('div', { class: 'chips' },
        h('span', { class: 'chip' }, `category: ${result.category ?? answer.category}`),
        result.severity ? h('span', { class: 'chip' }, `severity: ${result.severity}`) : null,
        result.confidence != null ? h('span', { class: 'chip' }, `confidence: ${Math.round(Number(result.confidence) * 100)}%`) : null),
      result.explanation ? [h('h3', {}, 'Explanation'), h('p', { class: 'prose' }, result.explanation)] : null,
      result.fix ? [h('h3', {}, 'Fix'), h('p', { class: 'prose' }, result.fix)] : null);
    if (result.evidence_lines?.length) {
      parts.push(h('h3', {}, 'Evidence'), h('p', { class: 'evidence' }, result.evidence_lines.map(evidenceLink)));
    }
  } else if (markdown) {
    parts.push(h('p', { class: 'prose' }, markdown));
  } else if (answer.category) {
    parts.push(h('div', { class: 'chips' }, h('span', { class: 'chip' }, `category: ${answer.category}`)));
  }
  if (answer.failing_step) parts.push(h('h3', {}, 'Failing step'), h('p', { class: 'mono prose' }, answer.failing_step));
  if (failedTests.length) parts.push(h('h3', {}, 'Failed tests'), h('ul', { class: 'tests-list' }, failedTests.map((t) => h('li', { class: 'mono' }, t))));
  if (excerpt.length) {
    parts.push(h('h3', {}, 'Excerpt'), h('p', { class: 'evidence' }, excerpt.map((range) =>
      h('a', { href: `#L${range.start_line}`, onclick: (event) => { event.preventDefault(); viewer?.reveal(range.start_line, { block: 'start' }); } },
        range.start_line === range.end_line ? `line ${range.start_line}` : `lines ${range.start_line}–${range.end_line}`))));
  }
  const source = answer.source === 'llm' ? `by ${answer.model ?? 'the LLM'}` : answer.source === 'reused' ? 'reused from an earlier job with the same failure' : answer.source === 'triage' ? 'from the log triage alone (no LLM configured)' : '';
  parts.push(h('p', { class: 'hint' }, 'Analysed ', ago(answer.analysed_at ?? answer.timestamp), source ? ` — ${source}` : ''));
  fill(analysisBox, parts);
  analysisBox.dataset.ready = 'true';
  renderFollowup(answer);
}

/** Turns as `{role, content}`, or gitlab-summary's `{question, answer}` pairs. */
function turnsOf(conversation) {
  return (conversation ?? []).flatMap((turn) => (turn.question !== undefined
    ? [{ role: 'user', content: turn.question }, turn.answer ? { role: 'assistant', content: turn.answer } : null].filter(Boolean)
    : [turn]));
}

function renderConversation(conversation) {
  return turnsOf(conversation).filter((turn) => turn.role !== 'system').map((turn) =>
    h('div', { class: 'turn' }, h('p', { class: 'who' }, turn.role === 'user' ? 'Question' : 'Answer'), h('p', { class: 'prose' }, turn.content)));
}

function renderFollowup(answer) {
  followupBox.hidden = false;
  const list = h('div', { class: 'conversation' }, renderConversation(answer.conversation));
  const question = h('textarea', { id: 'question', name: 'question', maxlength: 4000, required: true, placeholder: 'Why did this fail only on this branch?' });
  const message = h('p', { role: 'status', 'aria-live': 'polite', class: 'hint' });
  const noLlm = answer.source === 'triage';
  const button = h('button', { type: 'submit' }, 'Ask');
  const form = h('form', {
    class: 'followup',
    onsubmit: async (event) => {
      event.preventDefault();
      const text = question.value.trim();
      if (!text) return;
      button.disabled = true;
      message.className = 'hint';
      message.textContent = 'Asking…';
      try {
        const { status, body } = await api('/api/ai/followup', { json: aiBody({ question: text, wait: 20 }) });
        if (status === 202) {
          message.textContent = 'Queued; the answer appears here when the worker has it. Reload in a moment.';
        } else {
          fill(list, renderConversation(body.conversation ?? [...turnsOf(answer.conversation), { role: 'user', content: text }, { role: 'assistant', content: body.answer }]));
          question.value = '';
          message.textContent = 'Answered.';
        }
      } catch (error) {
        message.className = 'error';
        message.textContent = error.status === 409 && /LLM/.test(error.message)
          ? 'Follow-up questions need an LLM, and this deployment has none configured (LLM_PROVIDER=none). An administrator can set LLM_PROVIDER to openai or bedrock.'
          : `The question was not answered: ${error.message}`;
      } finally {
        button.disabled = false;
      }
    },
  }, h('label', { for: 'question' }, 'Ask about this failure'), question, button, message);
  fill(followupBox, h('h2', {}, 'Follow-up'), list,
    noLlm ? h('p', { class: 'notice' }, 'No LLM is configured for this deployment, so questions cannot be answered yet (LLM_PROVIDER=none).') : null,
    form);
}

async function requestAnalysis(button) {
  button.disabled = true;
  button.textContent = 'Analysing…';
  try {
    const { status, body } = await api('/api/ai/analyse', { json: aiBody({ wait: 20, jobName: job?.name, stage: job?.stage }) });
    if (status === 202) {
      fill(analysisBox, h('h2', {}, 'Analysis'), h('p', { role: 'status' }, 'Queued for the analysis worker; this page checks again every few seconds.'));
      for (let tries = 0; tries < 20; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 3000));
        try {
          const { body: ready } = await api(`/api/ai/cache?${target}`);
          await showAnalysis(ready, true);
          return;
        } catch (error) {
          if (error.status !== 404) throw error;
        }
      }
      fill(analysisBox, h('h2', {}, 'Analysis'), h('p', {}, 'The analysis is still queued; reload the page later.'));
      return;
    }
    await showAnalysis(body, true);
  } catch (error) {
    if (error.status !== 401) failure(analysisBox, error, 'The analysis was not made');
  }
}

async function showAnalysis(answer, logAlreadyShown) {
  excerpt = Array.isArray(answer.excerpt) ? answer.excerpt : [];
  renderAnalysis(answer);
  if (logAlreadyShown && viewer) await loadLog();
}

async function loadAnalysis() {
  try {
    const { body } = await api(`/api/ai/cache?${target}`);
    excerpt = Array.isArray(body.excerpt) ? body.excerpt : [];
    return body;
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 404) return null;
    throw error;
  }
}

function noAnalysis() {
  const failed = job ? statusKey(job.status) === 'failed' : true;
  const button = h('button', { type: 'button', onclick: (event) => requestAnalysis(event.currentTarget) }, 'Analyse this failure');
  fill(analysisBox, h('h2', {}, 'Analysis'),
    h('p', {}, failed ? 'This job has no analysis yet.' : 'Analyses are made for failed jobs; this one did not fail.'),
    failed ? button : null);
}

async function loadTests() {
  try {
    const { body } = await api(`/api/v1/jobs/${encodeURIComponent(provider)}/${encodeURIComponent(project)}/${encodeURIComponent(jobId)}/reports`);
    testsBox.hidden = false;
    const figures = ['tests', 'passed', 'failed', 'errors', 'skipped', 'flaky'];
    const list = (tests, word) => tests.length ? [h('h3', {}, `${word} tests`), h('ul', { class: 'tests-list' }, tests.map((test) =>
      h('li', {}, h('span', { class: 'mono' }, `${test.suite ? `${test.suite} › ` : ''}${test.name}`),
        test.message ? h('div', { class: 'hint' }, test.message) : null,
        test.text ? h('details', {}, h('summary', {}, 'output'), h('pre', {}, test.text)) : null)))] : null;
    fill(testsBox, h('h2', {}, 'Test report'),
      h('div', { class: 'chips' }, figures.map((name) => h('span', { class: 'chip' }, `${name}: ${body[name] ?? 0}`))),
      body.infrastructure_failures ? h('p', { class: 'notice' }, 'Most tests failed at once: counted as an infrastructure failure, no evidence against any test.') : null,
      list(body.failed_tests ?? [], 'Failed'),
      list(body.flaky_tests ?? [], 'Flaky'));
  } catch (error) {
    if (error.status === 404) return;
    if (error.status !== 401) { testsBox.hidden = false; failure(testsBox, error, 'The test report could not be loaded'); }
  }
}

if (!project || !jobId) {
  fill(head, h('p', { class: 'error' }, 'This page needs a project and a job id: open it from a pipeline.'));
} else {
  try {
    const [facts, answer] = await Promise.all([loadJobFacts(), loadAnalysis()]);
    job = facts;
    renderHead();
    if (answer) renderAnalysis(answer); else noAnalysis();
    await Promise.all([loadLog(), loadTests()]);
  } catch (error) {
    if (error.status !== 401) failure(head, error, 'The job could not be loaded');
  }
}
