// The label classes of a project as rows: name, colour (unused palette colours by default), region
// kinds, thing or stuff, hotkey; a live preview of the chips.
import { html, spareColor } from "./ui.js";

export function newClass(classes) {
  return { name: "", color: spareColor(classes.map((c) => c.color)), kinds: ["polygon", "mask"], type: "thing", hotkey: "" };
}

function ClassRow({ cls, index, onChange, onRemove, canRemove }) {
  const set = (key, value) => onChange({ ...cls, [key]: value });
  const toggleKind = (kind, on) => set("kinds", on ? [...new Set([...cls.kinds, kind])] : cls.kinds.filter((k) => k !== kind));
  const n = index + 1;
  return html`<tr class="class-row" data-index=${index}>
    <td><input aria-label=${`Class ${n} name`} value=${cls.name} required maxlength="100"
      data-field=${`label_schema[${index}].name`} onInput=${(e) => set("name", e.target.value)} /></td>
    <td><input type="color" aria-label=${`Class ${n} colour`} value=${cls.color} onInput=${(e) => set("color", e.target.value)} /></td>
    <td>${["polygon", "mask"].map((kind) => html`<label class="check"><input type="checkbox" checked=${cls.kinds.includes(kind)}
      aria-label=${`Class ${n} ${kind}`} onChange=${(e) => toggleKind(kind, e.target.checked)} />${kind}</label>`)}</td>
    <td><select aria-label=${`Class ${n} type`} value=${cls.type} onChange=${(e) => set("type", e.target.value)}>
      <option value="thing">thing (objects)</option><option value="stuff">stuff (one region per image)</option></select></td>
    <td><input class="hotkey" aria-label=${`Class ${n} hotkey`} maxlength="1" value=${cls.hotkey || ""}
      onInput=${(e) => set("hotkey", e.target.value.toLowerCase())} /></td>
    <td><button type="button" aria-label=${`Remove class ${n}`} disabled=${!canRemove} onClick=${onRemove}>Remove</button></td>
  </tr>`;
}

export function ClassRows({ classes, onChange }) {
  const update = (i, cls) => onChange(classes.map((c, j) => (j === i ? cls : c)));
  return html`<fieldset class="classes-editor"><legend>Classes</legend>
    <p class="muted">A thing is counted (each region one object); stuff is amorphous (sky, road: one region per image). A hotkey is one letter or digit that picks the class while labelling: choose one no command uses (F1 in the labeler's screen lists them).</p>
    <table class="grid"><thead><tr><th>name</th><th>colour</th><th>region kinds</th><th>type</th><th>hotkey</th><th></th></tr></thead>
      <tbody>${classes.map((c, i) => html`<${ClassRow} key=${i} index=${i} cls=${c} canRemove=${classes.length > 1}
        onChange=${(cls) => update(i, cls)} onRemove=${() => onChange(classes.filter((_, j) => j !== i))} />`)}</tbody></table>
    <div class="row"><button type="button" onClick=${() => onChange([...classes, newClass(classes)])}>Add class</button>
      <span class="chips" aria-label="Preview">${classes.map((c) => html`<span class="chip" style=${{ borderColor: c.color }}>
        <span class="swatch" style=${{ background: c.color }}></span>${c.name || "(unnamed)"}${c.hotkey ? html` <kbd>${c.hotkey}</kbd>` : null}</span>`)}</span></div>
  </fieldset>`;
}

/** The classes as the API takes them (no empty hotkey). */
export function classesOut(classes) {
  return classes.map(({ hotkey, ...c }) => (hotkey ? { ...c, hotkey } : c));
}
