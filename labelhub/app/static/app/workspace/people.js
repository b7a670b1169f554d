// An organization's people: members with their roles, and invitations (send by e-mail, the list with
// pending, accepted and expired ones, resend, a new link to copy, revoke).
import { useState } from "preact/hooks";
import * as api from "../api.js";
import { announce } from "../dom.js";
import { ErrorLine, html, Loading, managed, ROLES, useLoad } from "./ui.js";

function OrgMembers({ org, me }) {
  const { data, error, reload } = useLoad(() => api.all(`organizations/${org.id}/members/`), [org.id]);
  const [failure, setFailure] = useState(null);
  if (!data) return html`<${Loading} error=${error} />`;
  const act = async (fn, text) => {
    setFailure(null);
    try { await fn(); announce(text); } catch (err) { setFailure(err); }
    reload();
  };
  return html`<section class="card org-members" aria-labelledby="om-h"><h2 id="om-h">Members of ${org.name}</h2>
    <table class="grid"><thead><tr><th>user</th><th>role</th><th>since</th><th></th></tr></thead><tbody>
    ${data.map((m) => html`<tr data-member=${m.username}>
      <th scope="row">${m.username}${m.user_id === me ? " (you)" : ""}</th>
      <td><select aria-label=${`Role of ${m.username}`} value=${m.role} disabled=${m.user_id === me}
        onChange=${(e) => act(() => api.patch(`organizations/${org.id}/members/${m.id}/`, { role: e.target.value }), `${m.username} is now ${e.target.value}`)}>
        ${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}</select></td>
      <td>${new Date(m.created_at).toLocaleDateString()}</td>
      <td>${m.user_id === me ? null : html`<button class="danger" aria-label=${`Remove ${m.username}`}
        onClick=${() => act(() => api.del(`organizations/${org.id}/members/${m.id}/`), `${m.username} removed`)}>Remove</button>`}</td>
    </tr>`)}</tbody></table><${ErrorLine} error=${failure} /></section>`;
}

function LinkBox({ link }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try { await navigator.clipboard.writeText(link); setCopied(true); } catch { setCopied(false); }
  };
  return html`<span class="link-box"><input readonly aria-label="Invitation link" value=${link} size="24" onFocus=${(e) => e.target.select()} />
    <button type="button" onClick=${copy}>${copied ? "Copied" : "Copy link"}</button></span>`;
}

function InviteForm({ org, onSent }) {
  const [email, setEmail] = useState("");
  const [role, setRole] = useState("annotator");
  const [state, setState] = useState({ error: null, sent: null });
  const submit = async (e) => {
    e.preventDefault();
    try {
      const sent = await api.post(`organizations/${org.id}/invitations/`, { email, role });
      setState({ error: null, sent });
      announce(sent.email_sent ? `Invitation mailed to ${sent.email}` : `The mail to ${sent.email} failed: copy the link`);
      setEmail("");
      onSent(sent);
    } catch (error) { setState({ error, sent: null }); }
  };
  const { sent } = state;
  return html`<form class="invite-form" onSubmit=${submit} aria-label="Invite by e-mail">
    <div class="row"><label>Invite <input type="email" required aria-label="E-mail to invite" value=${email} onInput=${(e) => setEmail(e.target.value)} /></label>
      <label>as <select aria-label="Role" value=${role} onChange=${(e) => setRole(e.target.value)}>
        ${ROLES.filter((r) => org.role === "owner" || r !== "owner").map((r) => html`<option value=${r}>${r}</option>`)}</select></label>
      <button type="submit" class="primary">Send invitation</button></div>
    ${sent ? html`<p role="status" class=${sent.email_sent ? "muted" : "error"}>${sent.email_sent
      ? `Mailed to ${sent.email}. You can also give them the link:` : `The mail server did not take the message; give ${sent.email} this link:`}
      <${LinkBox} link=${sent.link} /></p>` : null}
    <${ErrorLine} error=${state.error} />
  </form>`;
}

function InvitationRow({ inv, org, links, onChange }) {
  const act = async (fn) => { try { await fn(); } catch (err) { onChange(null, err); return; } onChange(); };
  const renew = (send) => act(async () => {
    const fresh = await api.post(`organizations/${org.id}/invitations/${inv.id}/resend/`, { send_email: send });
    links[inv.id] = fresh.link;
    announce(send ? `New invitation mailed to ${fresh.email}` : "New link made: the old one no longer works");
  });
  const open = inv.status !== "accepted";
  return html`<tr data-invitation=${inv.email || inv.username} data-status=${inv.status}>
    <th scope="row">${inv.email || inv.username}</th><td>${inv.role}</td>
    <td><span class=${`status status-${inv.status}`}>${inv.status}</span>${inv.accepted_by ? ` by ${inv.accepted_by}` : ""}</td>
    <td>${open ? `until ${new Date(inv.expires_at).toLocaleDateString()}` : new Date(inv.accepted_at).toLocaleDateString()}</td>
    <td><div class="row">${open ? html`
      ${inv.email ? html`<button onClick=${() => renew(true)} aria-label=${`Resend to ${inv.email}`}>Resend</button>` : null}
      ${links[inv.id] ? html`<${LinkBox} link=${links[inv.id]} />` : html`<button onClick=${() => renew(false)} title="Makes a new link; the mailed one stops working">New link to copy</button>`}
      <button class="danger" aria-label=${`Revoke the invitation of ${inv.email || inv.username}`}
        onClick=${() => act(() => api.del(`organizations/${org.id}/invitations/${inv.id}/`))}>Revoke</button>` : null}</div></td>
  </tr>`;
}

function Invitations({ org }) {
  const [filter, setFilter] = useState("all");
  const [links] = useState({}); // links made in this page (the server keeps only digests)
  const [failure, setFailure] = useState(null);
  const { data, error, reload } = useLoad(() => api.all(`organizations/${org.id}/invitations/?status=${filter}`), [org.id, filter]);
  const changed = (_, err) => { setFailure(err || null); reload(); };
  return html`<section class="card invitations" aria-labelledby="inv-h"><h2 id="inv-h">Invitations</h2>
    <${InviteForm} org=${org} onSent=${(sent) => { links[sent.id] = sent.link; reload(); }} />
    <div class="row"><label>Show <select aria-label="Invitations to show" value=${filter} onChange=${(e) => setFilter(e.target.value)}>
      ${[["all", "all"], ["pending", "pending"], ["accepted", "accepted"], ["expired", "expired"]].map(([v, t]) => html`<option value=${v}>${t}</option>`)}</select></label></div>
    ${!data ? html`<${Loading} error=${error} />` : data.length ? html`<table class="grid"><thead><tr><th>invitee</th><th>role</th><th>status</th><th>date</th><th></th></tr></thead>
      <tbody>${data.map((inv) => html`<${InvitationRow} key=${inv.id} inv=${inv} org=${org} links=${links} onChange=${changed} />`)}</tbody></table>`
      : html`<p class="muted">No invitations ${filter === "all" ? "yet" : filter}.</p>`}
    <${ErrorLine} error=${failure} />
  </section>`;
}

export function PeopleScreen({ orgId }) {
  const { data, error } = useLoad(() => api.all("organizations/"));
  if (!data) return html`<${Loading} error=${error} />`;
  const orgs = managed(data);
  if (!orgs.length) return html`<p class="notice">Only owners and managers manage people.</p>`;
  const org = orgs.find((o) => o.id === orgId) || orgs[0];
  return html`<div class="workspace">
    <div class="row"><h1>People</h1>${orgs.length > 1 ? html`<span class="row">${orgs.map((o) => html`<a class="button" aria-current=${o.id === org.id ? "page" : null} href=${`#/people/${o.id}`}>${o.name}</a>`)}</span>` : null}</div>
    <${Invitations} org=${org} />
    <${OrgMembers} org=${org} me=${api.me.id} />
  </div>`;
}
