/**
 * Which reporter a run uses: `--json` asks for NDJSON; otherwise the dashboard on an interactive
 * terminal (stdout is a TTY, no `--no-dashboard`, not under CI, where a TTY may be emulated and redrawn
 * frames make unreadable logs); otherwise plain progress lines.
 */
export type ReporterKind = 'dashboard' | 'plain' | 'json';

export interface ReporterChoiceInput {
  /** process.stdout.isTTY */
  isTTY: boolean | undefined;
  json: boolean;
  noDashboard: boolean;
  env: Readonly<Record<string, string | undefined>>;
}

/**
 * CI providers set CI (GitHub Actions, GitLab, CircleCI, Travis, Buildkite...) or CONTINUOUS_INTEGRATION;
 * "false" and "0" mean not. This is ink's own rule (is-in-ci): where it holds, ink draws no live frames,
 * only the last one at the end, so a dashboard there would show nothing while the run goes.
 */
function inCi(env: ReporterChoiceInput['env']): boolean {
  const set = (key: string): boolean => {
    const value = env[key];
    return value !== undefined && value !== 'false' && value !== '0';
  };
  return set('CI') || set('CONTINUOUS_INTEGRATION');
}

export function chooseReporter(input: ReporterChoiceInput): ReporterKind {
  if (input.json) return 'json';
  if (input.isTTY === true && !input.noDashboard && !inCi(input.env)) return 'dashboard';
  return 'plain';
}
