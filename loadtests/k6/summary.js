// handleSummary helper: writes the whole summary as JSON where the runner asks
// (SUMMARY_FILE), and one line per main figure on stdout. No remote jslib: the
// machines have no network beyond the package registries.
export function summary(data) {
  const m = data.metrics;
  const v = (name, key) => (m[name] && m[name].values[key] !== undefined ? m[name].values[key] : 0);
  const line = `reqs/s ${v('http_reqs', 'rate').toFixed(1)}  p95 ${v('http_req_duration', 'p(95)').toFixed(1)} ms  failed ${(100 * v('http_req_failed', 'rate')).toFixed(1)}%\n`;
  const out = { stdout: line };
  out[__ENV.SUMMARY_FILE || 'summary.json'] = JSON.stringify(data, null, 2);
  return out;
}
