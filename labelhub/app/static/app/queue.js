// The queue: one card per project and stage (counts/), Start takes the next task with a lease.
import * as api from "./api.js";
import { announce, errorText, h } from "./dom.js";

export const MANAGING = ["owner", "manager"];

export async function queueScreen(root, { go, message }) {
  const [orgs, projects] = await Promise.all([api.all("organizations/"), api.all("projects/")]);
  const roleIn = Object.fromEntries(orgs.map((o) => [o.id, o.role]));
  const counts = await Promise.all(projects.map((p) => api.get(`projects/${p.id}/counts/`)));
  const sentBack = await api.all(`tasks/?assignee=${api.me.id}&status=open`);
  const cards = projects.map((p, i) => {
    const role = roleIn[p.organization];
    const c = counts[i];
    return h("section", { class: "card project", "aria-labelledby": `p${p.id}` },
      h("div", { class: "row" },
        h("h2", { id: `p${p.id}` }, p.name),
        h("span", { class: "muted" }, ` ${c.images} images${c.videos ? ` · ${c.videos} videos` : ""} · you are ${role}`),
        h("span", { class: "spacer" }),
        MANAGING.includes(role) ? h("a", { class: "button", href: `#/project/${p.id}` }, "Images and people") : null,
        MANAGING.includes(role) ? h("a", { class: "button", href: `#/manage/${p.id}` }, "Manage") : null),
      c.images === 0 && !c.videos ? h("p", { class: "notice empty-project" }, "No images in this project yet. ",
        MANAGING.includes(role) ? h("a", { class: "button primary", href: `#/project/${p.id}` }, "Add images") : "A manager adds them.") :
      h("div", { class: "stages" }, p.pipeline.map((stage) => {
        const byStatus = c.by_stage[stage.name] || {};
        const canWork = stage.role === role || MANAGING.includes(role);
        return h("div", { class: "stage-card", "data-stage": stage.name },
          h("h3", {}, stage.name), h("p", { class: "muted" }, `for ${stage.role}s`),
          h("p", {}, `${byStatus.open || 0} open · ${byStatus.in_progress || 0} in progress`),
          canWork ? h("button", { class: "primary", "aria-label": `Start ${stage.name} in ${p.name}`, onclick: () => go(`#/next/${p.id}/${encodeURIComponent(stage.name)}`) }, "Start") : null);
      })));
  });
  root.replaceChildren(
    h("div", { class: "queue" },
      message ? h("p", { class: "notice", role: "status" }, message) : null,
      h("h1", {}, "Your work"),
      cards.length ? cards : h("p", {}, "You are not in any project yet. ",
        orgs.some((o) => MANAGING.includes(o.role)) ? h("a", { class: "button primary", href: "#/projects/new" }, "Create a project") : "A manager adds you to one."),
      h("section", { class: "card" }, h("h2", {}, "Sent back to you"),
        sentBack.length
          ? h("ul", {}, sentBack.map((t) => h("li", {}, `Task ${t.id} in ${t.stage} `,
            h("a", { class: "button", href: `#/task/${t.id}` }, "Open"))))
          : h("p", { class: "muted" }, "Nothing sent back."))));
}

/** Claim the next task of a stage (never `exclude`: the task just left with F); 204 means the queue is
 * empty for me, and the server says why. */
export async function nextTask(root, { projectId, stage, message, exclude = null }) {
  let task;
  let reason = "";
  try {
    const skip = exclude ? `&exclude=${exclude}` : "";
    task = await api.post(`projects/${projectId}/next-task/?stage=${encodeURIComponent(stage)}${skip}`, {}, {
      onResponse: (res) => { reason = res.headers.get("X-Queue-Reason") || ""; },
    });
  } catch (err) {
    announce(errorText(err), "error");
    root.replaceChildren(h("div", { class: "empty" }, h("p", { class: "error" }, errorText(err)), h("a", { href: "#/queue" }, "Back to the queue")));
    return;
  }
  if (!task) {
    const text = reason || `Nothing to do here: the ${stage} queue has no task for you right now.`;
    announce(text);
    root.replaceChildren(h("div", { class: "empty", role: "status" },
      message ? h("p", { class: "notice" }, message) : null,
      h("h1", {}, "Queue empty"), h("p", {}, text), h("a", { class: "button", href: "#/queue" }, "Back to the queue")));
    return;
  }
  return task;
}
