// The canvas of the task screen: the View (view.js, Konva) drawn from the store. It redraws only when
// what it shows changed: the regions, the selection, hidden / locked / one-at-a-time, the tool and its
// draft, the review pins (comments, issues), the fill opacities. Brightness and contrast are a CSS filter
// on the canvas (no redraw); a vertex drag redraws the regions alone (renderLight).
const CANVAS_KEYS = ["regions", "selected", "hidden", "locked", "single", "editing", "tool", "draft", "comments", "issues", "showResolved", "opacity"];

/** Hidden regions; in single-region mode (review) all but the selected one. */
export function shownHidden({ regions, selected, hidden, single }) {
  if (!single) return hidden;
  return new Set(regions.filter((_, i) => i !== selected).map((r) => r.id));
}

export function drawCanvas(s) {
  const { store, view } = s;
  store.subscribe("canvas", CANVAS_KEYS, (state) => {
    view.fillOpacity = state.opacity.fill;
    view.selectedOpacity = state.opacity.selected;
    view.render({
      regions: state.regions, selected: state.selected, hidden: shownHidden(state), locked: state.locked,
      editable: state.editing && state.tool === "select", pins: s.issues.pins(), draft: state.draft,
    });
  });
}

/** Brightness and contrast (the store's "filters"): a CSS filter on the canvas, no redraw. */
export function applyFilters(s) {
  s.store.subscribe("filters", ["filters"], ({ filters }) => s.view.setFilters(filters.brightness, filters.contrast));
}

/** A cheap redraw while dragging a vertex (no panel rebuild, handles kept). */
export function renderLight(s) {
  const { regions, draft } = s.store.get();
  s.view.state = { ...s.view.state, regions, draft };
  s.view.renderRegions();
}
