"""Who may use which route: the access policy of peerlift as one table.

Every route of the app (JSON API and HTML pages, every method) has one row here: ``"METHOD /path"``
and the rule that says what each subject gets. A route missing from the table fails
tests/security/test_access_matrix.py, which sends every row's request as every subject.

Subjects (tests/security/world.py builds them on the shared personas of tests/conftest.py):
  anon             nobody signed in
  alice            participant of ``circle`` (arm A of the trial); the owner of the objects in the paths
  bob              participant of ``circle``, not the owner
  pat              peer supporter of ``circle``
  carol            participant of ``other_circle`` (arm B)
  coach            facilitator of ``circle`` (and of ``other_circle``)
  other_coach      facilitator of ``other_circle`` only
  clinician        clinician of ``circle``
  other_clinician  clinician of ``other_circle`` only
  researcher       researcher of the trial (its study team)
  other_researcher researcher of another study only
  admin            an admin (member of no circle)

Outcomes:
  ok     2xx or 3xx. For a write it means the access check let the request through: a refusal of the
         input itself (409, 410, 422) counts as ok, never 401, 403 or 404.
  noop   ok, and nothing in the database changed (a write that quietly does nothing for this subject)
  login  not signed in: 401 from the API, a redirect to the sign-in page from a page
  403    the subject may see the object but not do this (or their role may not do it)
  404    the subject may not see the object: it answers as if it did not exist
A refused write (login, 403, 404) must leave every table as it was.

Each rule names the subjects that get ``ok`` and those that get ``403``; anon gets ``login`` and everyone
else ``404`` unless the rule says otherwise.

To add a route: add its row below, under its domain, with the rule that states its policy (make a new
rule only when none of the named ones fits). If it writes, add a body that passes validation to
``requests_for`` so refused subjects meet the access check, not the validator; if a path parameter is new,
give it an object in tests/security/world.py (``Objects.ids``).
"""

from __future__ import annotations

import datetime as dt

import pyotp

from peerlift.tracking.instruments import SHIPPED_DIR
from peerlift.web.session_cookie import CHALLENGE_COOKIE
from tests.conftest import PASSWORD
from tests.security.world import SECTIONS, WALK_PROTOCOL

SUBJECTS = ("anon", "alice", "bob", "pat", "carol", "coach", "other_coach", "clinician", "other_clinician",
            "researcher", "other_researcher", "admin")
SIGNED_IN = frozenset(SUBJECTS) - {"anon"}
IN_CIRCLE = frozenset({"alice", "bob", "pat", "coach", "clinician"})        # the members of `circle`
OUTSIDERS = frozenset({"carol", "other_coach", "other_clinician", "other_researcher"})  # of another circle/study
PARTICIPANTS = frozenset({"alice", "bob", "pat", "carol"})
STAFF_ROLES = SIGNED_IN - PARTICIPANTS


def rule(ok=(), forbidden=(), *, anon="login", others="404", **exact) -> dict[str, str]:
    """What each subject gets: ``ok`` and ``forbidden`` (403) name subjects; ``exact`` sets any outcome."""
    table = {s: others for s in SUBJECTS}
    table["anon"] = anon
    table.update({s: "ok" for s in ok})
    table.update({s: "403" for s in forbidden})
    table.update(exact)
    assert set(table) == set(SUBJECTS), exact
    return table


def roles(*allowed: str) -> dict[str, str]:
    """Decided by the account's role alone: the others get 403 (nothing about an object is revealed)."""
    return rule(ok=allowed, forbidden=SIGNED_IN - set(allowed))


PUBLIC = rule(ok=SIGNED_IN, anon="ok")                                   # no sign-in needed
SIGNED = rule(ok=SIGNED_IN)                                               # anyone signed in (their own data)
CIRCLE = rule(ok=IN_CIRCLE)                                               # the circle's members
FACILITATOR = rule(ok={"coach"}, forbidden=IN_CIRCLE - {"coach"})         # the circle's facilitators
AUTHOR = rule(ok={"alice"}, forbidden=IN_CIRCLE - {"alice"})              # the author of the post or comment
AUTHOR_OR_FACILITATOR = rule(ok={"alice", "coach"}, forbidden=IN_CIRCLE - {"alice", "coach"})
OWNER = rule(ok={"alice"})                                                # alice's own object: others 404
DM = rule(ok={"alice", "coach"})                                          # the two people of the conversation
MESSAGE_ALICE = rule(ok={"coach", "clinician"}, forbidden={"alice", "bob", "pat"})  # a DM needs a staff side
MODERATORS = rule(ok={"coach", "clinician"}, forbidden={"alice", "bob", "pat"})     # facilitators, clinicians
QUEUE = rule(ok={"coach", "clinician", "pat"})                            # the review queue: not for members
QUEUE_ACT = rule(ok={"coach", "clinician"}, forbidden={"pat"})            # acting on it: not peer supporters
TRACKED = rule(ok={"alice", "coach", "clinician"})                        # alice's data: her and circle's staff
INBOX_CARD = rule(ok={"coach"})                                           # a card about a member of circle
ESCALATION = rule(ok={"clinician", "admin"})                              # the circle's clinicians and admins
PROTOCOL_READERS = roles("coach", "other_coach", "clinician", "other_clinician", "researcher",
                         "other_researcher", "admin")
PROTOCOL_WRITERS = roles("coach", "other_coach", "researcher", "other_researcher", "admin")
# protocols of a circle: its facilitators, the researchers of its study, admins
CIRCLE_PROTOCOL = rule(ok={"coach", "researcher", "admin"}, forbidden={"alice", "bob", "pat", "clinician"})
CIRCLE_ASSIGNMENTS = rule(ok=IN_CIRCLE | {"researcher", "admin"})          # reading them: members too
# protocols of an arm: the researchers of its study and admins (others are refused by role first)
ARM_PROTOCOL = rule(ok={"researcher", "admin"}, forbidden=SIGNED_IN - {"researcher", "other_researcher", "admin"},
                    other_researcher="404")
STUDY_TEAM = rule(ok={"researcher", "admin"})                             # the study's team and admins
STUDY_RESEARCHER = rule(ok={"researcher"}, forbidden={"admin"})           # changes: the study's researchers
RESEARCHERS = roles("researcher", "other_researcher", "admin")           # by role: define measures, studies
TAKES_PART = rule(ok=PARTICIPANTS, forbidden=STAFF_ROLES)                 # participant accounts only
ADMIN_ONLY = rule(ok={"admin"})                                           # the audit trail: hidden from others
# open communities: coach facilitates ``community``, alice is a member; anyone signed in sees its page and joins
COMMUNITY_PAGE = SIGNED                                                    # browse, see guidelines, join
COMMUNITY = rule(ok={"alice", "coach"})                                   # its posts: members only
CREATE_COMMUNITY = roles("coach", "other_coach", "admin")                 # facilitators and admins create
REPORT_AUTHOR = rule(ok={"alice"}, forbidden={"coach"})                  # editing alice's experience report
CURATE = rule(ok={"coach"}, forbidden={"alice"})                          # the community's guide: its facilitators
# asking alice to connect: anyone signed in, except carol, in the other arm of alice's study (alice
# asking herself is refused as bad input, which counts as ok)
CONNECT_ALICE = rule(ok=SIGNED_IN - {"carol"})
ENROLMENT_RANDOMISE = rule(ok={"alice", "researcher"})                    # the person, or the study's researchers

TABLE: dict[str, dict[str, str]] = {
    # --- identity (API) ---
    "POST /api/v1/auth/login": PUBLIC,
    "POST /api/v1/auth/signup": PUBLIC,
    "POST /api/v1/auth/logout": SIGNED,
    "POST /api/v1/auth/password/forgot": PUBLIC,
    "POST /api/v1/auth/password/reset": PUBLIC,
    "GET /api/v1/me": SIGNED,
    "PATCH /api/v1/me": SIGNED,
    "POST /api/v1/me/password": SIGNED,
    "GET /api/v1/users/{user_id}": CIRCLE,
    "GET /api/v1/me/sessions": SIGNED,
    "DELETE /api/v1/me/sessions/{session_id}": OWNER,
    "POST /api/v1/auth/login/two-factor": PUBLIC,
    "GET /api/v1/me/two-factor": SIGNED,
    "POST /api/v1/me/two-factor/setup": SIGNED,
    "POST /api/v1/me/two-factor/confirm": SIGNED,
    "POST /api/v1/me/two-factor/recovery-codes": SIGNED,
    "POST /api/v1/me/two-factor/disable": SIGNED,
    "DELETE /api/v1/users/{user_id}/two-factor": roles("admin"),
    "GET /api/v1/admin/audit": ADMIN_ONLY,
    "GET /api/v1/admin/audit/verify": ADMIN_ONLY,
    "GET /api/v1/me/access-log": SIGNED,
    "POST /api/v1/me/email": SIGNED,
    "GET /api/v1/me/export": SIGNED,
    "GET /api/v1/me/deletion": SIGNED,
    "POST /api/v1/me/deletion": SIGNED,
    "GET /api/v1/users/{user_id}/deletion": roles("admin"),
    "POST /api/v1/users/{user_id}/deletion": roles("admin"),
    # --- verified professionals and questions (API) ---
    "GET /api/v1/professions": SIGNED,
    "GET /api/v1/me/professional": SIGNED,
    "POST /api/v1/me/professional": SIGNED,
    "GET /api/v1/admin/professionals": roles("admin"),
    "POST /api/v1/admin/professionals/{application_id}/verify": roles("admin"),
    "POST /api/v1/admin/professionals/{application_id}/reject": roles("admin"),
    "POST /api/v1/admin/professionals/{application_id}/revoke": roles("admin"),
    "PUT /api/v1/posts/{post_id}/accepted-answer": AUTHOR,          # the asker only
    "GET /api/v1/communities/{community_id}/awaiting-professional": COMMUNITY,
    # --- health profiles and people like me (API) ---
    "GET /api/v1/me/health-profile": SIGNED,
    "PUT /api/v1/me/health-profile": SIGNED,
    "GET /api/v1/people/{user_id}/health-profile": CIRCLE,   # alice shares her conditions with her circles
    "GET /api/v1/codes/conditions": SIGNED,
    "GET /api/v1/codes/medicines": SIGNED,
    "GET /api/v1/people/like-me": SIGNED,
    "POST /api/v1/people/{user_id}/connection-requests": CONNECT_ALICE,
    "GET /api/v1/me/connection-requests": SIGNED,
    "POST /api/v1/connection-requests/{connection_request_id}/accept": OWNER,
    "POST /api/v1/connection-requests/{connection_request_id}/decline": OWNER,
    # --- community (API) ---
    "GET /api/v1/circles": SIGNED,
    "GET /api/v1/communities": COMMUNITY_PAGE,
    "POST /api/v1/communities": CREATE_COMMUNITY,
    "GET /api/v1/communities/{community_id}": COMMUNITY_PAGE,
    "POST /api/v1/communities/{community_id}/membership": COMMUNITY_PAGE,
    "DELETE /api/v1/communities/{community_id}/membership": COMMUNITY,
    "GET /api/v1/communities/{community_id}/posts": COMMUNITY,
    "POST /api/v1/communities/{community_id}/posts": COMMUNITY,
    # --- shared experience (API) ---
    "GET /api/v1/communities/{community_id}/experience-reports": COMMUNITY,
    "POST /api/v1/communities/{community_id}/experience-reports": COMMUNITY,
    "GET /api/v1/communities/{community_id}/experience-aggregates": COMMUNITY,
    "GET /api/v1/experience-aggregates": SIGNED,
    "GET /api/v1/experience-reports/{report_id}": COMMUNITY,
    "PATCH /api/v1/experience-reports/{report_id}": REPORT_AUTHOR,
    "DELETE /api/v1/experience-reports/{report_id}": COMMUNITY,             # the author or a facilitator
    "PUT /api/v1/experience-reports/{report_id}/helpful": COMMUNITY,        # alice's own: refused as input (422)
    "DELETE /api/v1/experience-reports/{report_id}/helpful": COMMUNITY,
    "PUT /api/v1/posts/{post_id}/helpful": CIRCLE,
    "DELETE /api/v1/posts/{post_id}/helpful": CIRCLE,
    "PUT /api/v1/comments/{comment_id}/helpful": CIRCLE,
    "DELETE /api/v1/comments/{comment_id}/helpful": CIRCLE,
    "GET /api/v1/communities/{community_id}/guide": COMMUNITY,
    "POST /api/v1/communities/{community_id}/guide": CURATE,
    "POST /api/v1/guide-entries/{guide_entry_id}/move": CURATE,
    "DELETE /api/v1/guide-entries/{guide_entry_id}": CURATE,
    "POST /api/v1/circles": roles("coach", "other_coach", "admin"),
    "GET /api/v1/circles/{circle_id}": CIRCLE,
    "GET /api/v1/circles/{circle_id}/members": CIRCLE,
    "POST /api/v1/circles/{circle_id}/members": FACILITATOR,
    "PATCH /api/v1/circles/{circle_id}/members/{user_id}": FACILITATOR,
    "POST /api/v1/circles/{circle_id}/read": CIRCLE,
    "POST /api/v1/circles/{circle_id}/rules/accept": CIRCLE,
    "POST /api/v1/circles/{circle_id}/invitations": FACILITATOR,
    "GET /api/v1/circles/{circle_id}/posts": CIRCLE,
    "POST /api/v1/circles/{circle_id}/posts": CIRCLE,
    "GET /api/v1/posts/{post_id}": CIRCLE,
    "PATCH /api/v1/posts/{post_id}": AUTHOR,
    "DELETE /api/v1/posts/{post_id}": AUTHOR_OR_FACILITATOR,
    "GET /api/v1/posts/{post_id}/history": CIRCLE,
    "PUT /api/v1/posts/{post_id}/pin": FACILITATOR,
    "DELETE /api/v1/posts/{post_id}/pin": FACILITATOR,
    "GET /api/v1/posts/{post_id}/comments": CIRCLE,
    "POST /api/v1/posts/{post_id}/comments": CIRCLE,
    "PATCH /api/v1/comments/{comment_id}": AUTHOR,
    "GET /api/v1/comments/{comment_id}/history": CIRCLE,
    "DELETE /api/v1/comments/{comment_id}": AUTHOR_OR_FACILITATOR,
    "PUT /api/v1/posts/{post_id}/reactions/{kind}": CIRCLE,
    "DELETE /api/v1/posts/{post_id}/reactions/{kind}": CIRCLE,
    "PUT /api/v1/comments/{comment_id}/reactions/{kind}": CIRCLE,
    "DELETE /api/v1/comments/{comment_id}/reactions/{kind}": CIRCLE,
    "GET /api/v1/polls/{poll_id}": CIRCLE,
    "POST /api/v1/polls/{poll_id}/votes": CIRCLE,
    "GET /api/v1/conversations": SIGNED,
    "POST /api/v1/conversations": MESSAGE_ALICE,
    "GET /api/v1/conversations/{conversation_id}/messages": DM,
    "POST /api/v1/conversations/{conversation_id}/messages": DM,
    "POST /api/v1/conversations/{conversation_id}/read": DM,
    # --- live stream and notifications (API) ---
    "GET /api/v1/stream": SIGNED,
    "GET /api/v1/notifications": SIGNED,
    # --- search (each searches what they may open; the results are checked in test_no_leaks) ---
    "GET /api/v1/search": SIGNED,
    "POST /api/v1/notifications/read": SIGNED,
    "GET /api/v1/notification-preferences": SIGNED,
    "PUT /api/v1/notification-preferences": SIGNED,
    # --- protocols (API) ---
    "GET /api/v1/protocols": PROTOCOL_READERS,
    "POST /api/v1/protocols": PROTOCOL_WRITERS,
    "GET /api/v1/protocols/{protocol_version_id}": PROTOCOL_READERS,
    "GET /api/v1/protocols/{protocol_version_id}/fhir": PROTOCOL_READERS,
    "GET /api/v1/circles/{circle_id}/assignments": CIRCLE_ASSIGNMENTS,
    "POST /api/v1/circles/{circle_id}/assignments": CIRCLE_PROTOCOL,
    "POST /api/v1/arms/{arm_id}/assignments": ARM_PROTOCOL,
    "POST /api/v1/assignments/{assignment_id}/migrate": CIRCLE_PROTOCOL,
    "GET /api/v1/circles/{circle_id}/fidelity": CIRCLE_PROTOCOL,
    "GET /api/v1/arms/{arm_id}/fidelity": ARM_PROTOCOL,
    # --- safety (API) ---
    "POST /api/v1/safety/triage": rule(ok=STAFF_ROLES, forbidden=PARTICIPANTS),
    "POST /api/v1/safety/personal-information": SIGNED,
    "POST /api/v1/flags": CIRCLE,
    "GET /api/v1/circles/{circle_id}/review": QUEUE,
    "POST /api/v1/review/{review_item_id}/actions": QUEUE_ACT,
    "PUT /api/v1/circles/{circle_id}/members/{user_id}/gating": MODERATORS,
    "GET /api/v1/escalations": roles("clinician", "other_clinician", "admin"),
    "GET /api/v1/escalations/{escalation_id}": ESCALATION,
    "POST /api/v1/escalations/{escalation_id}/acknowledge": ESCALATION,
    "POST /api/v1/escalations/{escalation_id}/resolve": ESCALATION,
    # --- tracking and questionnaires (API) ---
    "GET /api/v1/tracking/measures": SIGNED,
    "POST /api/v1/tracking/measures": RESEARCHERS,
    "GET /api/v1/tracking/entries": TRACKED,          # ?user_id=alice
    "POST /api/v1/tracking/entries": SIGNED,
    "GET /api/v1/tracking/goals": SIGNED,
    "PUT /api/v1/tracking/goals": SIGNED,
    "GET /api/v1/tracking/progress": TRACKED,         # ?user_id=alice
    "POST /api/v1/tracking/share": CIRCLE,
    "GET /api/v1/instruments": SIGNED,
    "POST /api/v1/instruments": RESEARCHERS,
    "GET /api/v1/instruments/{instrument_key}": SIGNED,
    "POST /api/v1/instruments/{instrument_key}/score": SIGNED,
    "POST /api/v1/circles/{circle_id}/questionnaires": FACILITATOR,
    "GET /api/v1/questionnaires/requests": SIGNED,
    "GET /api/v1/questionnaires/requests/{request_id}": OWNER,
    "POST /api/v1/questionnaires/requests/{request_id}/response": OWNER,
    "GET /api/v1/questionnaires/responses": TRACKED,  # ?user_id=alice
    # --- the facilitator's inbox (API) ---
    "GET /api/v1/inbox": SIGNED,
    "GET /api/v1/inbox/{card_id}": INBOX_CARD,
    "POST /api/v1/inbox/{card_id}/reply": INBOX_CARD,
    "POST /api/v1/inbox/{card_id}/snooze": INBOX_CARD,
    "POST /api/v1/inbox/{card_id}/dismiss": INBOX_CARD,
    # --- research (API) ---
    "GET /api/v1/studies": SIGNED,
    "POST /api/v1/studies": RESEARCHERS,
    "GET /api/v1/studies/{study_id}": STUDY_TEAM,
    "POST /api/v1/studies/{study_id}/arms": STUDY_RESEARCHER,
    "POST /api/v1/studies/{study_id}/arms/{arm_id}/protocol": STUDY_RESEARCHER,
    "POST /api/v1/studies/{study_id}/team": STUDY_RESEARCHER,
    "PUT /api/v1/studies/{study_id}/design": STUDY_RESEARCHER,
    "POST /api/v1/studies/{study_id}/consent-documents": STUDY_RESEARCHER,
    "POST /api/v1/studies/{study_id}/invitations": STUDY_RESEARCHER,
    "POST /api/v1/studies/{study_id}/clusters": STUDY_RESEARCHER,
    "GET /api/v1/studies/{study_id}/enrolments": STUDY_RESEARCHER,
    "POST /api/v1/enrolments": TAKES_PART,
    "GET /api/v1/enrolments": SIGNED,
    "GET /api/v1/enrolments/{enrolment_id}": OWNER,
    "POST /api/v1/enrolments/{enrolment_id}/screening": OWNER,
    "POST /api/v1/enrolments/{enrolment_id}/consent": OWNER,
    "POST /api/v1/enrolments/{enrolment_id}/decline": OWNER,
    "POST /api/v1/enrolments/{enrolment_id}/randomise": ENROLMENT_RANDOMISE,
    "POST /api/v1/enrolments/{enrolment_id}/withdraw": OWNER,
    "GET /api/v1/studies/{study_id}/metrics": STUDY_TEAM,
    "POST /api/v1/studies/{study_id}/cost-adjustments": STUDY_TEAM,
    # --- API documents ---
    "GET /openapi.json": PUBLIC,
    "HEAD /openapi.json": PUBLIC,
    "GET /docs": PUBLIC,
    "HEAD /docs": PUBLIC,
    "GET /docs/oauth2-redirect": PUBLIC,
    "HEAD /docs/oauth2-redirect": PUBLIC,
    "GET /redoc": PUBLIC,
    "HEAD /redoc": PUBLIC,
    # --- identity (pages) ---
    "GET /": PUBLIC,
    "GET /login": PUBLIC,
    "POST /login": PUBLIC,
    "POST /logout": SIGNED,
    "GET /profile": SIGNED,
    "POST /profile": SIGNED,
    "POST /profile/password": SIGNED,
    "GET /join/{token}": PUBLIC,
    "POST /join/{token}": PUBLIC,
    "GET /password/forgot": PUBLIC,
    "POST /password/forgot": PUBLIC,
    "GET /password/reset/{token}": PUBLIC,
    "POST /password/reset/{token}": PUBLIC,
    "GET /profile/sessions": SIGNED,
    "POST /profile/sessions/{session_id}/revoke": OWNER,
    "GET /login/two-factor": PUBLIC,
    "POST /login/two-factor": PUBLIC,
    "GET /profile/two-factor": SIGNED,
    "POST /profile/two-factor/setup": SIGNED,
    "POST /profile/two-factor/confirm": SIGNED,
    "POST /profile/two-factor/recovery-codes": SIGNED,
    "POST /profile/two-factor/disable": SIGNED,
    "GET /admin/two-factor": roles("admin"),
    "POST /admin/two-factor/reset": roles("admin"),
    "GET /admin/audit": ADMIN_ONLY,
    "GET /profile/access-log": SIGNED,
    "POST /profile/email": SIGNED,
    "GET /profile/data": SIGNED,
    "GET /profile/data/download": SIGNED,
    "GET /profile/delete": SIGNED,
    "POST /profile/delete": SIGNED,
    "GET /account-deleted": PUBLIC,
    "GET /admin/accounts": roles("admin"),
    "POST /admin/accounts": roles("admin"),
    "POST /admin/accounts/{user_id}/delete": roles("admin"),
    # --- community (pages) ---
    "GET /circles": SIGNED,
    "GET /communities": COMMUNITY_PAGE,
    "GET /communities/new": CREATE_COMMUNITY,
    "POST /communities/new": CREATE_COMMUNITY,
    "GET /communities/{community_id}": COMMUNITY_PAGE,
    "POST /communities/{community_id}/join": COMMUNITY_PAGE,
    "POST /communities/{community_id}/leave": COMMUNITY,
    # --- shared experience (pages) ---
    "GET /communities/{community_id}/experiences": COMMUNITY,
    "GET /communities/{community_id}/experiences/treatment": COMMUNITY,
    "GET /communities/{community_id}/experiences/new": COMMUNITY,
    "POST /communities/{community_id}/experiences/new": COMMUNITY,
    "GET /experiences/{report_id}": COMMUNITY,
    "GET /experiences/{report_id}/edit": REPORT_AUTHOR,
    "POST /experiences/{report_id}/edit": REPORT_AUTHOR,
    "POST /experiences/{report_id}/delete": COMMUNITY,
    "POST /experiences/{report_id}/helpful": COMMUNITY,
    "POST /posts/{post_id}/helpful": CIRCLE,
    "POST /comments/{comment_id}/helpful": CIRCLE,
    "GET /communities/{community_id}/guide": COMMUNITY,
    "POST /communities/{community_id}/guide": CURATE,
    "POST /guide-entries/{guide_entry_id}/move": CURATE,
    "POST /guide-entries/{guide_entry_id}/delete": CURATE,
    "GET /circles/new": roles("coach", "other_coach", "admin"),
    "POST /circles/new": roles("coach", "other_coach", "admin"),
    "GET /circles/{circle_id}": CIRCLE,
    "POST /circles/{circle_id}/rules": CIRCLE,
    "POST /circles/{circle_id}/posts": CIRCLE,
    "GET /circles/{circle_id}/members": CIRCLE,
    "POST /circles/{circle_id}/members/{user_id}/role": FACILITATOR,
    "GET /circles/{circle_id}/invitations": FACILITATOR,
    "POST /circles/{circle_id}/invitations": FACILITATOR,
    "GET /posts/{post_id}": CIRCLE,
    "GET /posts/{post_id}/card": CIRCLE,
    "GET /posts/{post_id}/thread": CIRCLE,
    "POST /posts/{post_id}/comments": CIRCLE,
    "GET /posts/{post_id}/edit": AUTHOR,
    "POST /posts/{post_id}/edit": AUTHOR,
    "GET /posts/{post_id}/history": CIRCLE,
    "POST /posts/{post_id}/delete": AUTHOR_OR_FACILITATOR,
    "POST /posts/{post_id}/pin": FACILITATOR,
    "POST /posts/{post_id}/react": CIRCLE,
    "POST /comments/{comment_id}/react": CIRCLE,
    "GET /comments/{comment_id}/edit": AUTHOR,
    "POST /comments/{comment_id}/edit": AUTHOR,
    "POST /comments/{comment_id}/delete": AUTHOR_OR_FACILITATOR,
    "POST /polls/{poll_id}/vote": CIRCLE,
    "GET /messages": SIGNED,
    "POST /messages": MESSAGE_ALICE,
    "GET /messages/{conversation_id}": DM,
    "GET /messages/{conversation_id}/fragment": DM,
    "POST /messages/{conversation_id}": DM,
    # --- notifications (pages) ---
    "GET /notifications": SIGNED,
    "GET /search": SIGNED,
    "POST /notifications/read": SIGNED,
    # someone else's notification: the same quiet redirect to the list as one that does not exist
    "POST /notifications/{notification_id}/open": rule(ok={"alice"}, others="noop"),
    "GET /settings/notifications": SIGNED,
    "POST /settings/notifications": SIGNED,
    # --- protocols (pages) ---
    "GET /circles/{circle_id}/protocol": CIRCLE_PROTOCOL,
    "POST /circles/{circle_id}/protocol": CIRCLE_PROTOCOL,
    # --- safety (pages) ---
    "GET /posts/{post_id}/flag": CIRCLE,
    "GET /comments/{comment_id}/flag": CIRCLE,
    "GET /messages/m/{message_id}/flag": DM,
    "POST /flags": CIRCLE,
    "GET /circles/{circle_id}/review": QUEUE,
    "POST /review/{item_id}": QUEUE_ACT,
    "POST /circles/{circle_id}/members/{user_id}/gating": MODERATORS,
    "POST /circles/{circle_id}/premoderation": FACILITATOR,
    "GET /safety/escalations": roles("clinician", "other_clinician", "admin"),
    "GET /safety/escalations/{escalation_id}": ESCALATION,
    "POST /safety/escalations/{escalation_id}/acknowledge": ESCALATION,
    "POST /safety/escalations/{escalation_id}/resolve": ESCALATION,
    # --- verified professionals and questions (pages) ---
    "GET /profile/professional": SIGNED,
    "POST /profile/professional": SIGNED,
    "GET /admin/professionals": roles("admin"),
    "POST /admin/professionals/{application_id}/verify": roles("admin"),
    "POST /admin/professionals/{application_id}/reject": roles("admin"),
    "POST /admin/professionals/{application_id}/revoke": roles("admin"),
    "POST /posts/{post_id}/accept": AUTHOR,
    "GET /communities/{community_id}/awaiting": COMMUNITY,
    # --- health profiles and people like me (pages) ---
    "GET /profile/health": SIGNED,
    "POST /profile/health": SIGNED,
    "GET /people/like-me": SIGNED,
    "POST /people/{user_id}/connect": CONNECT_ALICE,
    "GET /people/requests": SIGNED,
    "POST /people/requests/{connection_request_id}/accept": OWNER,
    "POST /people/requests/{connection_request_id}/decline": OWNER,
    # --- tracking and questionnaires (pages) ---
    "GET /me/tracking": SIGNED,
    "POST /me/tracking/log": SIGNED,
    "POST /me/tracking/goals": SIGNED,
    "POST /me/tracking/share": CIRCLE,
    "GET /people/{user_id}/tracking": TRACKED,
    "GET /people/{user_id}/tracking/{measure_key}.svg": TRACKED,
    "GET /people/{user_id}/questionnaires/{key}.svg": TRACKED,
    "GET /me/questionnaires": SIGNED,
    "GET /questionnaires/{request_id}": OWNER,
    "POST /questionnaires/{request_id}": OWNER,
    "GET /circles/{circle_id}/questionnaires": FACILITATOR,
    "POST /circles/{circle_id}/questionnaires": FACILITATOR,
    "GET /tracking/measures": RESEARCHERS,
    "POST /tracking/measures": RESEARCHERS,
    # --- the facilitator's inbox (pages) ---
    "GET /inbox": SIGNED,
    "GET /inbox/fragment": SIGNED,
    "POST /inbox/{card_id}/reply": INBOX_CARD,
    "POST /inbox/{card_id}/snooze": INBOX_CARD,
    "POST /inbox/{card_id}/dismiss": INBOX_CARD,
    # --- research (pages) ---
    "GET /studies": SIGNED,
    "GET /studies/new": RESEARCHERS,
    "POST /studies/new": RESEARCHERS,
    "GET /studies/{study_id}": STUDY_TEAM,
    "POST /studies/{study_id}/arms": STUDY_RESEARCHER,
    "POST /studies/{study_id}/team": STUDY_RESEARCHER,
    "POST /studies/{study_id}/design": STUDY_RESEARCHER,
    "POST /studies/{study_id}/consent-documents": STUDY_RESEARCHER,
    "POST /studies/{study_id}/invitations": STUDY_RESEARCHER,
    "GET /study/{token}": PUBLIC,
    "POST /study/{token}": TAKES_PART,
    "POST /study/{token}/signup": PUBLIC,
    "GET /enrolments/{enrolment_id}": OWNER,
    "POST /enrolments/{enrolment_id}/randomise": OWNER,
    "POST /enrolments/{enrolment_id}/screening": OWNER,
    "POST /enrolments/{enrolment_id}/consent": OWNER,
    "GET /enrolments/{enrolment_id}/consent.txt": OWNER,
    "GET /enrolments/{enrolment_id}/consent.html": OWNER,
    "GET /enrolments/{enrolment_id}/withdraw": OWNER,
    "POST /enrolments/{enrolment_id}/withdraw": OWNER,
    "GET /studies/{slug}/dashboard": STUDY_TEAM,
    "GET /studies/{slug}/dashboard/{chart}.svg": STUDY_TEAM,
    "POST /studies/{slug}/cost-adjustments": STUDY_TEAM,
}


PHQ9_ITEMS = ("interest", "mood", "sleep", "energy", "appetite", "self_worth", "concentration", "psychomotor",
              "self_harm")
PHQ9_ANSWERS = [1, 1, 1, 1, 1, 1, 1, 1, 0]


def requests_for(o) -> dict[str, dict]:
    """What each route is sent besides its path: a query string, a JSON body (API) or a form (pages).
    Writes get input that passes validation, so a refused subject meets the access check (and an
    allowed one mostly succeeds; a refusal of the input still shows the access check let it through)."""
    w = o.world
    today = dt.date.today().isoformat()
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    instrument = (SHIPPED_DIR / "who5.yaml").read_text().replace("key: who5", "key: wellbeing5")
    return {
        "POST /api/v1/auth/login": {"json": {"email": o.dora.email, "password": PASSWORD}},
        "POST /api/v1/auth/login/two-factor": {"json": {"challenge": o.challenge_token,
                                                        "code": pyotp.TOTP(o.two_factor_secret).now()}},
        "POST /api/v1/me/two-factor/confirm": {"json": {"code": "123456"}},
        "POST /api/v1/me/email": {"json": {"email": "new-address@example.test", "password": PASSWORD}},
        "POST /api/v1/me/deletion": {"json": {"password": PASSWORD, "confirm": True}},
        "POST /api/v1/users/{user_id}/deletion": {"json": {"password": PASSWORD, "confirm": True,
                                                           "reason": "Asked in writing."}},
        "POST /api/v1/me/two-factor/recovery-codes": {"json": {"code": "123456"}},
        "POST /api/v1/me/two-factor/disable": {"json": {"password": PASSWORD, "code": "123456"}},
        "POST /api/v1/auth/signup": {"json": {"token": o.invitation_token, "email": "newcomer@example.test",
                                              "password": "a long new password", "display_name": "New Comer",
                                              "timezone": "Europe/London"}},
        "POST /api/v1/auth/password/forgot": {"json": {"email": o.dora.email}},
        "POST /api/v1/auth/password/reset": {"json": {"token": o.reset_token, "password": "a long new password"}},
        "PATCH /api/v1/me": {"json": {"pronouns": "they/them"}},
        "POST /api/v1/me/password": {"json": {"current_password": PASSWORD, "new_password": "a long new password"}},
        "POST /api/v1/circles": {"json": {"name": "Evening Walkers"}},
        "POST /api/v1/communities": {"json": {"name": "Long COVID", "rules": "Be kind."}},
        "POST /api/v1/communities/{community_id}/membership": {"json": {"pseudonym": "Steady Otter 17",
                                                                        "accept_guidelines": True}},
        "POST /api/v1/communities/{community_id}/posts": {"json": {"body": "Hello, everyone."}},
        "POST /api/v1/communities/{community_id}/experience-reports": {"json": {
            "treatment": "Nicotine patches", "duration_value": 8, "duration_unit": "weeks",
            "side_effects": ["vivid dreams"], "would_recommend": "yes"}},
        "PATCH /api/v1/experience-reports/{report_id}": {"json": {
            "treatment": "A10BA02", "duration_unit": "ongoing", "side_effects": [], "would_recommend": "unsure"}},
        "POST /api/v1/communities/{community_id}/guide": {"json": {"target_type": "experience",
                                                                    "target_id": o.report_id}},
        "POST /api/v1/guide-entries/{guide_entry_id}/move": {"json": {"direction": "up"}},
        "GET /communities/{community_id}/experiences/treatment": {"params": {"key": "A10BA02"}},
        "POST /communities/{community_id}/experiences/new": {"data": {
            "treatment": "Nicotine patches", "duration_value": "8", "duration_unit": "weeks",
            "side_effects": "vivid dreams", "would_recommend": "yes"}},
        "POST /experiences/{report_id}/edit": {"data": {
            "treatment": "A10BA02", "duration_unit": "ongoing", "would_recommend": "unsure"}},
        "POST /communities/{community_id}/guide": {"data": {"target_type": "experience",
                                                            "target_id": str(o.report_id)}},
        "POST /guide-entries/{guide_entry_id}/move": {"data": {"direction": "up"}},
        "POST /api/v1/circles/{circle_id}/members": {"json": {"email": o.dora.email}},
        "PATCH /api/v1/circles/{circle_id}/members/{user_id}": {"json": {"role": "peer_supporter"}},
        "POST /api/v1/circles/{circle_id}/read": {"json": {"post_id": o.post_id}},
        "POST /api/v1/circles/{circle_id}/invitations": {"json": {"days_valid": 7, "max_uses": 5}},
        "POST /api/v1/circles/{circle_id}/posts": {"json": {"body": "Walked again today."}},
        "PATCH /api/v1/posts/{post_id}": {"json": {"body": "Morning walk done, 4 km."}},
        "POST /api/v1/posts/{post_id}/comments": {"json": {"body": "Nice one."}},
        "PATCH /api/v1/comments/{comment_id}": {"json": {"body": "Same route on Friday."}},
        "POST /api/v1/polls/{poll_id}/votes": {"json": {"option_ids": [o.option_id]}},
        "POST /api/v1/conversations": {"json": {"user_id": w.alice.id}},
        "PUT /api/v1/me/health-profile": {"json": {"conditions": [{"code": "I10"}], "visibility": {
            "conditions": "my_circles"}, "suggest_me": True}},
        "POST /api/v1/people/{user_id}/connection-requests": {"json": {"note": "Hello"}},
        "POST /api/v1/me/professional": {"json": {"profession": "nurse", "registration_number": "12A3456E"}},
        "POST /api/v1/admin/professionals/{application_id}/reject": {"json": {"reason": "Not on the register."}},
        "POST /api/v1/admin/professionals/{application_id}/revoke": {"json": {"reason": "Register lapsed."}},
        "PUT /api/v1/posts/{post_id}/accepted-answer": {"json": {"comment_id": o.comment_id}},
        "POST /api/v1/conversations/{conversation_id}/messages": {"json": {"body": "See you Saturday."}},
        "POST /api/v1/notifications/read": {"json": {}},
        "PUT /api/v1/notification-preferences": {"json": {"digest": "daily"}},
        "POST /api/v1/protocols": {"json": {"source": WALK_PROTOCOL}},
        "POST /api/v1/circles/{circle_id}/assignments": {"json": {"protocol_version_id": o.protocol_version_id,
                                                                  "start_date": today}},
        "POST /api/v1/arms/{arm_id}/assignments": {"json": {"protocol_version_id": o.protocol_version_id,
                                                            "start_date": today}},
        "POST /api/v1/assignments/{assignment_id}/migrate": {"json": {"protocol_version_id": o.newer_version_id,
                                                                      "reason": "A new version."}},
        "POST /api/v1/safety/triage": {"json": {"text": "A good walk today."}},
        "POST /api/v1/safety/personal-information": {"json": {"text": "Call me on 07700 900123."}},
        "POST /api/v1/flags": {"json": {"object_type": "post", "object_id": o.post_id, "reason": "spam"}},
        "POST /api/v1/review/{review_item_id}/actions": {"json": {"action": "dismiss"}},
        "PUT /api/v1/circles/{circle_id}/members/{user_id}/gating": {"json": {"gated": True}},
        "POST /api/v1/escalations/{escalation_id}/resolve": {"json": {"outcome": "no_risk"}},
        "POST /api/v1/tracking/measures": {"json": {"key": "sleep", "name": "Sleep", "unit": "h", "kind": "decimal"}},
        "GET /api/v1/tracking/entries": {"params": {"user_id": w.alice.id}},
        "GET /api/v1/search": {"params": {"q": "walk Saturday"}},
        "GET /search": {"params": {"q": "walk Saturday"}},
        "POST /api/v1/tracking/entries": {"json": {"measure": "steps", "value": 9000}},
        "PUT /api/v1/tracking/goals": {"json": {"daily_steps": 9000}},
        "GET /api/v1/tracking/progress": {"params": {"user_id": w.alice.id}},
        "POST /api/v1/tracking/share": {"json": {"circle_id": w.circle.id}},
        "POST /api/v1/instruments": {"json": {"source": instrument}},
        "POST /api/v1/instruments/{instrument_key}/score": {"json": {"answers": PHQ9_ANSWERS}},
        "POST /api/v1/circles/{circle_id}/questionnaires": {"json": {"instrument": "gad7", "user_id": w.alice.id}},
        "POST /api/v1/questionnaires/requests/{request_id}/response": {"json": {"answers": PHQ9_ANSWERS}},
        "GET /api/v1/questionnaires/responses": {"params": {"user_id": w.alice.id}},
        "POST /api/v1/inbox/{card_id}/reply": {"json": {"text": "How are the walks going?"}},
        "POST /api/v1/inbox/{card_id}/snooze": {"json": {"until": tomorrow}},
        "POST /api/v1/inbox/{card_id}/dismiss": {"json": {}},
        "POST /api/v1/studies": {"json": {"title": "A new study", "slug": "new-study",
                                          "researcher_ids": [w.researcher.id]}},
        "POST /api/v1/studies/{study_id}/arms": {"json": {"slug": "c", "name": "Arm C"}},
        "POST /api/v1/studies/{study_id}/arms/{arm_id}/protocol": {"json": {
            "protocol_version_id": o.protocol_version_id, "start_date": today}},
        "POST /api/v1/studies/{study_id}/team": {"json": {"user_id": w.clinician.id, "role": "clinician"}},
        "PUT /api/v1/studies/{study_id}/design": {"json": {"scheme": "simple"}},
        "POST /api/v1/studies/{study_id}/consent-documents": {"json": {"version": "2.0", "title": "Consent",
                                                                       "sections": SECTIONS}},
        "POST /api/v1/studies/{study_id}/invitations": {"json": {}},
        "POST /api/v1/studies/{study_id}/clusters": {"json": {"circle_ids": [w.circle.id]}},
        "POST /api/v1/enrolments": {"json": {"token": o.study_token}},
        "POST /api/v1/enrolments/{enrolment_id}/screening": {"json": {"answers": {"adult": "yes"}}},
        "POST /api/v1/enrolments/{enrolment_id}/consent": {"json": {"sections": ["purpose", "leave"],
                                                                    "typed_name": w.alice.display_name}},
        "POST /api/v1/enrolments/{enrolment_id}/decline": {"json": {}},
        "POST /api/v1/enrolments/{enrolment_id}/withdraw": {"json": {"reason": "No time.", "confirm": True}},
        "POST /api/v1/studies/{study_id}/cost-adjustments": {"json": {"user_id": w.coach.id, "minutes": 30,
                                                                      "reason": "Training"}},
        # pages
        "POST /login": {"data": {"email": o.dora.email, "password": PASSWORD}},
        "POST /login/two-factor": {"data": {"code": pyotp.TOTP(o.two_factor_secret).now()},
                                   "cookies": {CHALLENGE_COOKIE: o.challenge_token}},
        "POST /profile/two-factor/confirm": {"data": {"code": "123456"}},
        "POST /profile/two-factor/recovery-codes": {"data": {"code": "123456"}},
        "POST /profile/two-factor/disable": {"data": {"password": PASSWORD, "code": "123456"}},
        "POST /admin/two-factor/reset": {"data": {"email": o.dora.email}},
        "POST /profile/email": {"data": {"email": "new-address@example.test", "password": PASSWORD}},
        "POST /profile/delete": {"data": {"password": PASSWORD, "confirm": "true"}},
        "POST /admin/accounts": {"data": {"email": w.alice.email}},
        "POST /admin/accounts/{user_id}/delete": {"data": {"password": PASSWORD, "confirm": "true",
                                                           "reason": "Asked in writing."}},
        "POST /profile": {"data": {"display_name": "Renamed Person", "timezone": "Europe/London"}},
        "POST /profile/password": {"data": {"current_password": PASSWORD, "new_password": "a long new password"}},
        "POST /join/{token}": {"data": {"email": "joiner@example.test", "password": "a long new password",
                                        "display_name": "Jo Iner", "timezone": "Europe/London"}},
        "POST /password/forgot": {"data": {"email": o.dora.email}},
        "POST /password/reset/{token}": {"data": {"password": "a long new password"}},
        "POST /circles/new": {"data": {"name": "Evening Walkers", "timezone": "Europe/London"}},
        "POST /communities/new": {"data": {"name": "Long COVID", "rules": "Be kind."}},
        "POST /communities/{community_id}/join": {"data": {"pseudonym": "Steady Otter 17",
                                                           "accept_guidelines": "true"}},
        "POST /circles/{circle_id}/posts": {"data": {"body": "Walked again today."}},
        "POST /circles/{circle_id}/members/{user_id}/role": {"data": {"role": "peer_supporter"}},
        "POST /circles/{circle_id}/invitations": {"data": {"days_valid": "7", "max_uses": "5"}},
        "POST /posts/{post_id}/comments": {"data": {"body": "Nice one."}},
        "POST /posts/{post_id}/edit": {"data": {"body": "Morning walk done, 4 km."}},
        "POST /posts/{post_id}/pin": {"data": {"pinned": "true"}},
        "POST /posts/{post_id}/react": {"data": {"kind": "heart"}},
        "POST /comments/{comment_id}/react": {"data": {"kind": "heart"}},
        "POST /comments/{comment_id}/edit": {"data": {"body": "Same route on Friday."}},
        "POST /polls/{poll_id}/vote": {"data": {"option_ids": str(o.option_id)}},
        "POST /messages": {"data": {"user_id": str(w.alice.id)}},
        "POST /profile/health": {"data": {"condition": "I10 High blood pressure", "vis_conditions": "my_circles",
                                          "suggest_me": "1"}},
        "POST /people/{user_id}/connect": {"data": {"note": "Hello"}},
        "POST /profile/professional": {"data": {"profession": "nurse", "registration_number": "12A3456E"}},
        "POST /admin/professionals/{application_id}/reject": {"data": {"reason": "Not on the register."}},
        "POST /admin/professionals/{application_id}/revoke": {"data": {"reason": "Register lapsed."}},
        "POST /posts/{post_id}/accept": {"data": {"comment_id": str(o.comment_id)}},
        "POST /messages/{conversation_id}": {"data": {"body": "See you Saturday."}},
        "POST /settings/notifications": {"data": {"digest": "daily"}},
        "POST /circles/{circle_id}/protocol": {"data": {"protocol_version_id": str(o.newer_version_id),
                                                        "start_date": today, "reason": "Again."}},
        "POST /flags": {"data": {"object_type": "post", "object_id": str(o.post_id), "reason": "spam"}},
        "POST /review/{item_id}": {"data": {"action": "dismiss"}},
        "POST /circles/{circle_id}/members/{user_id}/gating": {"data": {"gated": "true"}},
        "POST /circles/{circle_id}/premoderation": {"data": {"on": "true"}},
        "POST /safety/escalations/{escalation_id}/resolve": {"data": {"outcome": "no_risk"}},
        "POST /me/tracking/log": {"data": {"measure": "steps", "value": "9000"}},
        "POST /me/tracking/goals": {"data": {"daily_steps": "9000"}},
        "POST /me/tracking/share": {"data": {"circle_id": str(w.circle.id)}},
        "POST /questionnaires/{request_id}": {"data": {f"item_{k}": str(v) for k, v in zip(PHQ9_ITEMS, PHQ9_ANSWERS)}},
        "POST /circles/{circle_id}/questionnaires": {"data": {"instrument": "gad7", "user_id": str(w.alice.id)}},
        "POST /tracking/measures": {"data": {"key": "sleep", "name": "Sleep", "unit": "h", "kind": "decimal"}},
        "POST /inbox/{card_id}/reply": {"data": {"text": "How are the walks going?"}},
        "POST /inbox/{card_id}/snooze": {"data": {"until": "tomorrow"}},
        "POST /studies/new": {"data": {"title": "A new study", "slug": "new-study", "researcher_email": w.researcher.email}},
        "POST /studies/{study_id}/arms": {"data": {"slug": "c", "name": "Arm C"}},
        "POST /studies/{study_id}/team": {"data": {"email": w.clinician.email, "role": "clinician"}},
        "POST /studies/{study_id}/design": {"data": {"scheme": "simple"}},
        "POST /studies/{study_id}/consent-documents": {"data": {"version": "2.0", "title": "Consent",
                                                                "sections": "## Purpose\nWe test walking."}},
        "POST /study/{token}/signup": {"data": {"email": "volunteer@example.test", "password": "a long new password",
                                                "display_name": "Val Unteer", "timezone": "Europe/London"}},
        "POST /enrolments/{enrolment_id}/screening": {"data": {"q_adult": "yes"}},
        "POST /enrolments/{enrolment_id}/consent": {"data": {"section": ["purpose", "leave"],
                                                             "typed_name": w.alice.display_name}},
        "POST /enrolments/{enrolment_id}/withdraw": {"data": {"reason": "No time.", "confirm": "true"}},
        "POST /studies/{slug}/cost-adjustments": {"data": {"person": str(w.coach.id), "minutes": "30",
                                                           "reason": "Training"}},
    }


