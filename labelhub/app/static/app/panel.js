// The side panels: regions list (class, source, score, hide, lock, click to zoom), comments and the
// review timeline. Each draws from the task screen's state (its store); task/panels.js says which
// slices each one follows.
import { h } from "./dom.js";
import { classColor } from "./view.js";

export function regionName(region, index) {
  const source = region.source === "ai" ? "AI" : "human";
  const score = region.score != null ? `, ${Number(region.score).toFixed(2)}` : "";
  return `${region.label} ${index + 1}, ${source}${score}`;
}

export function regionsPanel(s) {
  const { regions } = s.editor;
  // A slide may hold thousands of regions: the list shows at most LIST_MAX of them, around the selected
  // one (the canvas draws them all), so a selection or an edit does not rebuild thousands of rows.
  const start = regions.length > LIST_MAX ? Math.max(0, Math.min(regions.length - LIST_MAX, s.selected - LIST_MAX / 2)) : 0;
  const end = Math.min(regions.length, start + LIST_MAX);
  const list = h("ol", { class: "regions", "aria-label": "Regions", start: start + 1 });
  regions.slice(start, end).forEach((region, k) => {
    const i = start + k;
    const hidden = s.hidden.has(region.id), locked = s.locked.has(region.id);
    const item = h("li", { class: i === s.selected ? "selected" : "", "data-region-id": region.id },
      h("span", { class: "swatch", style: { background: classColor(s.schema, region.label), borderStyle: region.source === "ai" ? "dashed" : "solid" } }),
      h("button", { class: "name", "aria-current": i === s.selected ? "true" : null, onclick: () => { s.select(i); s.zoomToSelected(); } }, regionName(region, i)),
      region.prediction_id != null && s.sources?.get(region.prediction_id) ? h("span", { class: "source muted", title: "Pre-label source" }, s.sources.get(region.prediction_id)) : null,
      s.readOnly ? h("span", { class: "muted" }, region.kind)
        : h("select", { "aria-label": `Class of ${regionName(region, i)}`, onchange: (e) => s.relabel(i, e.target.value) },
          s.schema.map((c) => h("option", { value: c.name, selected: c.name === region.label }, c.name))),
      h("button", { class: "icon", title: hidden ? "Show (H)" : "Hide (H)", "aria-pressed": String(hidden), "aria-label": `${hidden ? "Show" : "Hide"} ${regionName(region, i)}`, onclick: () => s.toggleHidden(region.id) }, hidden ? "◌" : "◉"),
      h("button", { class: "icon", title: "Lock (L)", "aria-pressed": String(locked), "aria-label": `Lock ${regionName(region, i)}`, onclick: () => s.toggleLocked(region.id) }, locked ? "locked" : "lock"),
      s.readOnly ? null : h("button", { class: "icon", title: "Delete (Del)", "aria-label": `Delete ${regionName(region, i)}`, onclick: () => s.remove(i) }, "✕"),
    );
    list.append(item);
  });
  return h("section", { class: "panel" },
    h("div", { class: "row" }, h("h2", {}, `Regions (${regions.length})`), h("span", { class: "spacer" }),
      h("button", { "aria-pressed": String(Boolean(s.single)), title: "Show one region at a time; Up/Down step", onclick: () => s.toggleSingle() }, "One at a time")),
    regions.length ? list : h("p", { class: "muted" }, "No regions yet."),
    end - start < regions.length
      ? h("p", { class: "muted" }, `Listed ${start + 1}-${end} of ${regions.length}: select a region on the canvas to list its neighbours.`)
      : null);
}

const LIST_MAX = 200;

export function commentsPanel(s) {
  const open = s.comments.filter((c) => !c.resolved);
  const shown = s.issues.showResolved ? s.comments : open;
  const list = h("ol", { class: "comments", "aria-label": "Comments" });
  shown.forEach((c) => {
    const n = s.comments.indexOf(c) + 1;
    list.append(h("li", { class: c.resolved ? "resolved" : "", "data-comment-id": c.id },
      h("button", { class: "pin-badge", "aria-label": `Show comment ${n}`, onclick: () => s.issues.focusComment(c) }, String(n)),
      h("span", { class: "text" }, c.text),
      h("span", { class: "muted" }, ` ${c.author || ""}${c.region_id ? " · region" : c.x != null ? " · point" : ""}`),
      s.canComment ? h("button", { onclick: () => s.issues.resolveComment(c, !c.resolved) }, c.resolved ? "Reopen" : "Resolve") : null,
    ));
  });
  return h("section", { class: "panel" },
    h("h2", {}, `Comments (${open.length} open)`),
    shown.length ? list : h("p", { class: "muted" }, "No open comments."),
    s.comments.length > open.length ? h("label", { class: "check" }, h("input", { type: "checkbox", checked: s.issues.showResolved, onchange: (e) => s.store.set({ showResolved: e.target.checked }) }), " show resolved") : null,
  );
}

export function timelinePanel(timeline) {
  if (!timeline) return null;
  const items = [
    ...timeline.revisions.map((r) => ({ at: r.created_at, text: `revision ${r.number} by ${r.author || "AI"} in ${r.stage || "-"}` })),
    ...timeline.events.map((e) => ({ at: e.created_at, text: `${e.kind.replaceAll("_", " ")} by ${e.actor || "system"}${e.to_stage ? ` → ${e.to_stage}` : ""}` })),
  ].sort((a, b) => a.at.localeCompare(b.at));
  return h("section", { class: "panel" }, h("h2", {}, "Timeline"),
    h("ol", { class: "timeline" }, items.map((i) => h("li", {}, h("time", { datetime: i.at }, new Date(i.at).toLocaleString()), " ", i.text))));
}
