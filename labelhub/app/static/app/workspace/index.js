// The manager's workspace: #/projects, #/projects/new, #/project/{id}, #/project/{id}/settings,
// #/people[/{org}]. Each screen is a preact component mounted into the router's root.
import { mount } from "./nav.js";
import { html } from "./ui.js";
import { PeopleScreen } from "./people.js";
import { ProjectScreen } from "./project.js";
import { ProjectFormScreen } from "./projectform.js";
import { ProjectsScreen } from "./projects.js";

function screenFor(parts, go) {
  const [name, id, sub] = parts;
  if (name === "projects" && id === "new") return html`<${ProjectFormScreen} go=${go} />`;
  if (name === "projects") return html`<${ProjectsScreen} />`;
  if (name === "project" && sub === "settings") return html`<${ProjectFormScreen} projectId=${Number(id)} go=${go} />`;
  if (name === "project") return html`<${ProjectScreen} key=${id} projectId=${Number(id)} />`;
  return html`<${PeopleScreen} orgId=${id ? Number(id) : null} />`;
}

/** Mount the workspace screen for `parts` (the hash split at "/"); returns the router's handle. */
export function workspaceScreen(root, { parts, go }) {
  return mount(root, screenFor(parts, go));
}
