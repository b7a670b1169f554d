// The task list's query and first requests, shared by its screen (workspace/tasks.js) and the router
// (main.js), which starts them while the screen's modules load.
export const PAGE_SIZE = 50;
export const EMPTY = { stage: "", status: "", assignee: "", gold: "", open_comments: "", source: "", sort: "id" };

export function query(filters, page, pageSize) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v !== "") params.set(k, v);
  params.set("page", page);
  params.set("page_size", pageSize);
  return params.toString();
}

/** The project and the first page of its tasks: the two requests before the rows. */
export const firstRequests = (projectId) => [`projects/${projectId}/`, `projects/${projectId}/tasks/?${query(EMPTY, 1, PAGE_SIZE)}`];
