// The QA pipeline as an ordered list of stages: name, role, sample rate, where a rejection goes; and
// whether review stages are done by different people (independent reviews).
import { html } from "./ui.js";

export function newStage(stages) {
  return { name: `review-${stages.length}`, role: "reviewer", sample_rate: 1, reject_to: stages[0]?.name || null };
}

function StageRow({ stage, index, earlier, onChange, onRemove, onUp }) {
  const set = (key, value) => onChange({ ...stage, [key]: value });
  const n = index + 1;
  return html`<tr class="stage-row" data-index=${index}>
    <td>${n}</td>
    <td><input aria-label=${`Stage ${n} name`} value=${stage.name} required pattern="[a-z0-9][a-z0-9_-]*"
      onInput=${(e) => set("name", e.target.value)} /></td>
    <td><select aria-label=${`Stage ${n} role`} value=${stage.role} onChange=${(e) => set("role", e.target.value)}>
      ${["annotator", "reviewer", "manager"].map((r) => html`<option value=${r}>${r}</option>`)}</select></td>
    <td>${index === 0 ? html`<span class="muted">every task</span>` : html`<input type="number" min="0" max="1" step="0.05"
      aria-label=${`Stage ${n} sample rate`} value=${stage.sample_rate} onInput=${(e) => set("sample_rate", Number(e.target.value))} />`}</td>
    <td>${index === 0 ? html`<span class="muted">–</span>` : html`<select aria-label=${`Stage ${n} rejects to`} value=${stage.reject_to || earlier[0]}
      onChange=${(e) => set("reject_to", e.target.value)}>${earlier.map((s) => html`<option value=${s}>${s}</option>`)}</select>`}</td>
    <td><div class="row">${index > 1 ? html`<button type="button" aria-label=${`Move stage ${n} up`} onClick=${onUp}>Up</button>` : null}
      ${index > 0 ? html`<button type="button" aria-label=${`Remove stage ${n}`} onClick=${onRemove}>Remove</button>` : null}</div></td>
  </tr>`;
}

export function StageRows({ stages, independent, onChange, onIndependent }) {
  const update = (i, stage) => onChange(stages.map((s, j) => (j === i ? stage : s)));
  const up = (i) => { const next = [...stages]; [next[i - 1], next[i]] = [next[i], next[i - 1]]; onChange(next); };
  return html`<fieldset><legend>QA stages</legend>
    <p class="muted">Every task goes through the stages in order; a stage's sample rate is the share of tasks it sees, and a rejection sends the task back to the stage named.</p>
    <table class="grid"><thead><tr><th>#</th><th>name</th><th>role</th><th>sample rate</th><th>rejects to</th><th></th></tr></thead>
      <tbody>${stages.map((s, i) => html`<${StageRow} key=${i} index=${i} stage=${s} earlier=${stages.slice(0, i).map((e) => e.name)}
        onChange=${(st) => update(i, st)} onRemove=${() => onChange(stages.filter((_, j) => j !== i))} onUp=${() => up(i)} />`)}</tbody></table>
    <div class="row"><button type="button" onClick=${() => onChange([...stages, newStage(stages)])}>Add stage</button>
      <label class="check"><input type="checkbox" checked=${independent} onChange=${(e) => onIndependent(e.target.checked)} />
        Independent reviews (who acted on a task in one review stage never acts on it in a later one)</label></div>
  </fieldset>`;
}
