// The manager's workspace: links between its screens for one project, and a mount helper that renders
// a preact component into the router's root and unmounts it when the router leaves.
import { render } from "preact";
import { html } from "htm/preact";

/** The project's screens as [key, title, href]: one list for the preact nav and the DOM-built one. */
export function workspaceTabs(projectId) {
  return [["project", "Images and people", `#/project/${projectId}`], ["manage", "Overview"], ["tasks", "Tasks"],
    ["exports", "Exports"], ["metrics", "Metrics"], ["settings", "Settings", `#/project/${projectId}/settings`]]
    .map(([key, title, href]) => [key, title, href || `#/${key}/${projectId}`]);
}

export function WorkspaceNav({ project, current }) {
  return html`<nav class="workspace-nav row" aria-label="Project workspace">
    <strong>${project.name}</strong>
    ${workspaceTabs(project.id).map(([screen, title, href]) => html`<a href=${href} class=${screen === current ? "button primary" : "button"}
      aria-current=${screen === current ? "page" : null}>${title}</a>`)}
  </nav>`;
}

/** Render `vnode` into `root`; the returned object's destroy() unmounts it (the router calls it). */
export function mount(root, vnode) {
  root.replaceChildren();
  render(vnode, root);
  return { destroy() { render(null, root); } };
}

export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
export const bytes = (n) => (n == null ? "–" : n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KB` : `${(n / (1 << 20)).toFixed(1)} MB`);
