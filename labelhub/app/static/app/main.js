// The router: #/queue, #/next/{project}/{stage}[/{task to skip}], #/task/{id}, #/manage/{project}, and
// the manager's workspace (#/projects, #/project/{id}, #/people: workspace/index.js; #/tasks/{project},
// #/exports/{project}, #/metrics/{project}). One screen at a time; leaving a task screen releases its lease.
//
// Loading: only the router, the queue and their helpers load with the page (the page preloads them all at
// once); every other screen's modules load when it opens (a list never loads the editor, Konva or the
// SAM decoder), its whole module graph asked for at once (the page lists it, read from the files by
// labelhub/app/modules.py) while the screen's first API requests already run beside them.
import { announce, errorText, h } from "./dom.js";
import { setOverrides } from "./keymap.js";
import { nextTask, queueScreen } from "./queue.js";
import { get, prefetch } from "./api.js";
import { firstRequests as taskListRequests } from "./workspace/tasksfirst.js";

performance.mark("labelhub:main"); // the router runs (benchmarks/task_list.py --breakdown)
// What the server knew when it sent the page: the user's preferences and the screens' module graphs.
const boot = JSON.parse(document.getElementById("app-boot").textContent);
setOverrides(boot.preferences.shortcuts); // before any screen: the task screen's tooltips show the keys

// The screens loaded on demand, by their path under static/app/ (the keys of boot.screens).
const SCREENS = {
  "task.js": () => import("./task.js"),
  "video/screen.js": () => import("./video/screen.js"),
  "manager.js": () => import("./manager.js"),
  "workspace/index.js": () => import("./workspace/index.js"),
  "workspace/tasks.js": () => import("./workspace/tasks.js"),
  "workspace/exports.js": () => import("./workspace/exports.js"),
  "workspace/metrics.js": () => import("./workspace/metrics.js"),
};
const WORKSPACE_ROUTES = ["projects", "project", "people"]; // workspace/index.js draws them
const preloaded = new Set();

/** The screen module at `path`, its whole static graph preloaded together (not one level at a time). */
function screen(path) {
  for (const href of boot.screens[path] || []) {
    if (preloaded.has(href)) continue;
    preloaded.add(href);
    document.head.append(Object.assign(document.createElement("link"), { rel: "modulepreload", href }));
  }
  return SCREENS[path]();
}

// A video task opens the video screen (static/app/video/); an image task the image editor. The image
// editor's modules start loading beside the task's request (most tasks are images).
async function openTask(root, taskOrId, go) {
  const editor = screen("task.js");
  editor.catch(() => {}); // a failed load is reported below when it is awaited
  const task = typeof taskOrId === "object" ? taskOrId : await get(`tasks/${taskOrId}/`);
  if (task.video) {
    document.body.dataset.screen = "task";
    return (await screen("video/screen.js")).videoScreen(root, { task, go });
  }
  prefetch(`tasks/${task.id}/`); // the editor's first request (it reads the task afresh), while it loads
  return (await editor).taskScreen(root, { taskId: task.id, go });
}

const root = document.getElementById("screen");
let current = null;
let pendingMessage = null;

function go(hash, { replace = false, message = null } = {}) {
  pendingMessage = message;
  if (replace) { history.replaceState(null, "", hash); route(); } else if (location.hash === hash) route(); else location.hash = hash;
}

async function route() {
  const message = pendingMessage;
  pendingMessage = null;
  const previous = current;
  current = null;
  if (previous?.destroy) await previous.destroy();
  delete document.body.dataset.ready;
  const parts = (location.hash.replace(/^#\/?/, "") || "queue").split("/").map(decodeURIComponent);
  document.body.dataset.screen = parts[0];
  root.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    if (parts[0] === "task") {
      prefetch(`tasks/${Number(parts[1])}/`);
      current = await openTask(root, Number(parts[1]), go);
    } else if (parts[0] === "next") {
      screen("task.js").catch(() => {}); // loads while the server picks the task
      const task = await nextTask(root, { projectId: Number(parts[1]), stage: parts[2], message, exclude: Number(parts[3]) || null });
      if (task) {
        history.replaceState(null, "", `#/task/${task.id}`);
        parts.splice(0, parts.length, "task", String(task.id));
        document.body.dataset.screen = "task";
        current = await openTask(root, task, go);
      }
    }
    else if (parts[0] === "manage") await (await screen("manager.js")).managerScreen(root, { projectId: Number(parts[1]), go });
    else if (WORKSPACE_ROUTES.includes(parts[0])) current = (await screen("workspace/index.js")).workspaceScreen(root, { parts, go });
    else if (parts[0] === "tasks") {
      for (const path of taskListRequests(Number(parts[1]))) prefetch(path);
      current = await (await screen("workspace/tasks.js")).tasksScreen(root, { projectId: Number(parts[1]) });
    }
    else if (parts[0] === "exports") current = await (await screen("workspace/exports.js")).exportsScreen(root, { projectId: Number(parts[1]) });
    else if (parts[0] === "metrics") current = await (await screen("workspace/metrics.js")).metricsScreen(root, { projectId: Number(parts[1]) });
    else await queueScreen(root, { go, message });
  } catch (err) {
    announce(errorText(err), "error");
    root.replaceChildren(h("div", { class: "empty" }, h("p", { class: "error" }, errorText(err)), h("a", { href: "#/queue" }, "Back to the queue")));
  }
  document.body.dataset.readyAt = String(Math.round(performance.now())); // ms since navigation start
  document.body.dataset.ready = parts[0];
}

document.getElementById("nav").append(h("a", { href: "#/queue" }, "Queue"), " ", h("a", { href: "#/projects" }, "Projects"));
window.addEventListener("hashchange", route);
route();
