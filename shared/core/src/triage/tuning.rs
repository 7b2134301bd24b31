//! The triage's tuned constants, as values: the evaluation (`buildlore analyze --evaluate`)
//! tunes them on some repositories' logs and measures on the others', so the figure it
//! reports for held-out repositories says how well the chosen values carry over.

/// The constants chosen on labelled logs; [`Tuning::default`] is what the triage uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// Lines shown from the end of the failing step's output.
    pub step_tail_lines: usize,
    /// A failing step's output up to this long is shown whole.
    pub short_step_lines: usize,
    /// The failing step's tail reaches up through error lines fewer than this many lines
    /// apart ...
    pub tail_reach_gap: usize,
    /// ... and at most this far above where it started (a bound for logs full of error
    /// words; the longest labelled LogChunks report reached this way runs about 3,000 lines).
    pub tail_reach_lines: usize,
    /// Whether the reach up through error lines also climbs over a stack trace right above
    /// what it reached (stack frames hold no error word).
    pub reach_over_stack_traces: bool,
    /// Lines of error blocks shown beside the failing step's tail (the best block and the
    /// first failed test's report are shown whatever their size; runner-up blocks while
    /// fewer lines than this are shown) ...
    pub block_lines: usize,
    /// ... and with the last green run, where evidence lines are only those it did not print.
    pub block_lines_with_last_success: usize,
    /// With the last green run: how many lines both runs printed may stand between two new
    /// lines of the failing step's tail.
    pub seen_gap: usize,
    /// With the last green run: it is used when at least this share of this log's lines
    /// that show something occur in it too (else the two logs are hardly runs of one job).
    pub min_seen_share: f64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            step_tail_lines: 24,
            short_step_lines: 40,
            tail_reach_gap: 40,
            tail_reach_lines: 5_000,
            reach_over_stack_traces: true,
            block_lines: 5,
            block_lines_with_last_success: 30,
            seen_gap: 6,
            min_seen_share: 0.25,
        }
    }
}
