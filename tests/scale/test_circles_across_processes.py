"""Two circles of members spread over two `peerlift serve` processes and one `peerlift worker`,
on PostgreSQL + Redis: every member holds a live stream on each process while members post,
comment, react and read their feeds through both. Every post, comment and reaction reaches every
stream of every member of its circle, once and in order, and nothing of the other circle does.
Work scheduled for now (a programme prompt and an email digest per member) waits while only the
serving processes run (they run no scheduler), then the separate worker delivers each exactly
once and its notifications reach both streams of their person at once."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx
from sqlalchemy import func, select

from peerlift import db as dbmod
from peerlift.delivery import scheduler
from peerlift.delivery.models import DeliveryStatus, ScheduledDelivery
from peerlift.notify import service as notify
from peerlift.notify.models import Notification
from tests.conftest import build_world, http_login
from tests.factories import add_member, create_user
from tests.sse import Frame, StreamReader

EXTRA_MEMBERS = {"circle": 5, "other_circle": 3}  # beside alice, bob, pat and carol: 8 and 4 members
POSTS_EACH = 2
COMMENTS_EACH = 2
REACTIONS_EACH = 2
ARRIVAL_SECONDS = 20.0  # everything is normally there within a second or two; this is a generous bound
OURS = ScheduledDelivery.dedupe_key.like("scale:%")


@dataclass
class Member:
    user_id: int
    email: str
    circle_id: int
    clients: list[httpx.Client] = field(default_factory=list)    # one per serving process
    streams: list[StreamReader] = field(default_factory=list)    # one per serving process
    frames: list[list[Frame]] = field(default_factory=list)      # what each stream received

    @property
    def home(self) -> httpx.Client:
        """Where this member writes: members alternate between the processes."""
        return self.clients[self.user_id % len(self.clients)]

    @property
    def away(self) -> httpx.Client:
        return self.clients[(self.user_id + 1) % len(self.clients)]

    def drain(self) -> None:
        for stream, got in zip(self.streams, self.frames):
            while not stream.frames.empty():
                got.append(stream.frames.get_nowait())


def key(frame: Frame):
    """What a frame is about, comparable with what the test wrote."""
    data = frame.data
    if frame.event == "post.created":
        return ("post", data["post_id"])
    if frame.event == "comment.created":
        return ("comment", data["comment_id"])
    if frame.event == "reaction.added":
        return ("reaction", data["post_id"], data["actor_id"], data["kind"])
    if frame.event == "notification.created":
        return ("notification", data["notification_id"])
    return (frame.event, frame.id)


def wait_for_all(members: list[Member], expected: dict[int, set], timeout: float) -> None:
    """Until every stream of every member holds what is expected of its circle (or time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        for member in members:
            member.drain()
        missing = {(m.email, i): expected[m.user_id] - {key(f) for f in got}
                   for m in members for i, got in enumerate(m.frames)}
        missing = {where: keys for where, keys in missing.items() if keys}
        if not missing:
            return
        if time.monotonic() > deadline:
            sample = {where: sorted(keys)[:5] for where, keys in list(missing.items())[:4]}
            raise AssertionError(f"{len(missing)} streams lack frames after {timeout:.0f} s, e.g. {sample}")
        time.sleep(0.05)


def test_circles_spread_over_two_processes_and_a_worker(cluster, mailbox):
    # --- people: two circles of members (arm A and arm B), created through the services -------
    with dbmod.transaction() as s:
        world = build_world(s)
        circles = {"circle": world.circle, "other_circle": world.other_circle}
        people = {"circle": [world.alice, world.bob, world.pat], "other_circle": [world.carol]}
        for name, extra in EXTRA_MEMBERS.items():
            for i in range(extra):
                person = create_user(s, f"Member {name} {i + 1}")
                add_member(s, circles[name], person)
                people[name].append(person)
        members = [Member(p.id, p.email, circles[name].id) for name in circles for p in people[name]]
        circle_of = {m.user_id: m.circle_id for m in members}
        # Work due now: a programme prompt in the app and an email digest for each member.
        for m in members:
            scheduler.schedule(s, "notify.prompt", {"user_id": m.user_id, "circle_id": m.circle_id,
                                                    "text": "Time for today's walk."},
                               due_at=dbmod.utcnow(), dedupe_key=f"scale:prompt:{m.user_id}")
            user = s.get(type(world.alice), m.user_id)
            notify.update_settings(s, user, digest="daily")
            scheduler.schedule(s, "email.digest", {"user_id": m.user_id}, due_at=dbmod.utcnow(),
                               dedupe_key=f"scale:digest:{m.user_id}")
    circle_ids = {c.id for c in circles.values()}

    servers = cluster.servers(2)
    with ExitStack() as stack, ThreadPoolExecutor(max_workers=6) as pool:
        # --- every member signed in, with a client and a stream open on each process ----------
        def sign_in(m: Member) -> None:
            # one sign-in; the session (kept in the database) is good on every process
            first = http_login(servers[0].url, m)
            m.clients = [first] + [httpx.Client(base_url=server.url, cookies=first.cookies, headers=first.headers,
                                                timeout=10) for server in servers[1:]]

        list(pool.map(sign_in, members))
        for m in members:
            for client in m.clients:
                stack.callback(client.close)
                m.streams.append(stack.enter_context(StreamReader(client)))
                m.frames.append([])
        stack.callback(lambda: [stream.stop() for m in members for stream in m.streams])  # runs first

        # --- activity: posts through each member's home process --------------------------------
        def write_posts(m: Member) -> list[tuple[int, int]]:
            out = []
            for k in range(POSTS_EACH):
                r = m.home.post(f"/api/v1/circles/{m.circle_id}/posts",
                                json={"body": f"Walked to the park this morning, round {k + 1}."})
                assert r.status_code == 201, r.text
                out.append((m.circle_id, r.json()["id"]))
            return out

        posts: dict[int, list[int]] = {cid: [] for cid in circle_ids}
        author: dict[int, int] = {}
        for m, written in zip(members, pool.map(write_posts, members)):
            for cid, pid in written:
                posts[cid].append(pid)
                author[pid] = m.user_id

        # --- comments through the other process, reactions, feeds read through both ------------
        def respond(m: Member) -> tuple[list[int], list[tuple]]:
            others = [p for p in posts[m.circle_id] if author[p] != m.user_id]
            comments, reactions = [], []
            for k in range(COMMENTS_EACH):
                post_id = others[(m.user_id + k) % len(others)]
                r = m.away.post(f"/api/v1/posts/{post_id}/comments", json={"body": f"Well done, note {k + 1}!"})
                assert r.status_code == 201, r.text
                comments.append(r.json()["id"])
            for k in range(REACTIONS_EACH):
                post_id = others[(m.user_id + 3 * k + 1) % len(others)]
                kind = ("clap", "strong")[k % 2]
                r = m.home.put(f"/api/v1/posts/{post_id}/reactions/{kind}")
                assert r.status_code == 200, r.text
                reactions.append(("reaction", post_id, m.user_id, kind))
            for client in m.clients:
                feed = client.get(f"/api/v1/circles/{m.circle_id}/posts", params={"limit": 100})
                assert feed.status_code == 200, feed.text
                assert {p["id"] for p in feed.json()["posts"]} == set(posts[m.circle_id])
                other = (circle_ids - {m.circle_id}).pop()
                assert client.get(f"/api/v1/circles/{other}/posts").status_code == 404
            return comments, reactions

        comments: dict[int, list[int]] = {cid: [] for cid in circle_ids}
        reactions: dict[int, list[tuple]] = {cid: [] for cid in circle_ids}
        for m, (cs, rs) in zip(members, pool.map(respond, members)):
            comments[m.circle_id].extend(cs)
            reactions[m.circle_id].extend(rs)

        # --- every stream of every member has all of its circle's activity ----------------------
        of_circle = {cid: {("post", p) for p in posts[cid]} | {("comment", c) for c in comments[cid]}
                     | set(reactions[cid]) for cid in circle_ids}
        wait_for_all(members, {m.user_id: of_circle[m.circle_id] for m in members}, ARRIVAL_SECONDS)
        time.sleep(0.5)  # anything stray or doubled would be on its way by now
        for m in members:
            m.drain()
            foreign = (circle_ids - {m.circle_id}).pop()
            foreign_posts = set(posts[foreign])
            for got in m.frames:
                circle_frames = [key(f) for f in got if f.data.get("circle_id") is not None]
                assert not [f for f in got if f.data.get("circle_id") == foreign], m.email
                assert not [f for f in got if f.data.get("post_id") in foreign_posts], m.email
                assert set(circle_frames) == of_circle[m.circle_id], m.email
                assert not [k for k, n in Counter(circle_frames).items() if n > 1], f"doubled frames for {m.email}"
                ids = [f.id for f in got]
                assert ids == sorted(ids) and len(set(ids)) == len(ids), f"frames out of order for {m.email}"

        # --- the serving processes run no scheduler: the work due now is still waiting ---------
        with dbmod.transaction(write=False) as s:
            waiting = Counter(s.scalars(select(ScheduledDelivery.status).where(OURS)))
        assert waiting == {DeliveryStatus.pending: 2 * len(members)}

        # --- the worker delivers it, once ---------------------------------------------------------
        worker = cluster.worker()
        deadline = time.monotonic() + 30
        while True:
            with dbmod.transaction(write=False) as s:
                statuses = Counter(s.scalars(select(ScheduledDelivery.status).where(OURS)))
            if statuses == {DeliveryStatus.done: 2 * len(members)}:
                break
            assert worker.alive(), worker.log_tail()
            assert time.monotonic() < deadline, f"not delivered in 30 s: {statuses}\n{worker.log_tail()}"
            time.sleep(0.2)

        with dbmod.transaction(write=False) as s:
            prompt_rows = dict(s.execute(select(ScheduledDelivery.id, ScheduledDelivery.payload)
                                         .where(OURS, ScheduledDelivery.kind == "notify.prompt")).all())
            delivered = s.execute(select(Notification.delivery_id, Notification.user_id, Notification.id)
                                  .where(Notification.delivery_id.in_(prompt_rows))).all()
            assert s.scalar(select(func.count()).select_from(Notification)
                            .where(Notification.delivery_id.in_(prompt_rows))) == len(members)
        assert Counter(d for d, _u, _n in delivered) == Counter(list(prompt_rows))  # one notification per delivery
        prompt_of = {user_id: note_id for _d, user_id, note_id in delivered}
        assert set(prompt_of) == set(circle_of)

        # Both streams of each member hear of their prompt, though no serving process made it.
        wait_for_all(members, {m.user_id: {("notification", prompt_of[m.user_id])} for m in members}, ARRIVAL_SECONDS)
        time.sleep(0.5)
        every_prompt = set(prompt_of.values())
        for m in members:
            m.drain()
            for got in m.frames:
                heard = [key(f) for f in got if f.event == "notification.created"
                         and f.data["notification_id"] in every_prompt]
                assert heard == [("notification", prompt_of[m.user_id])], m.email

        # One digest email per member, each naming the new posts of their circle and nothing else.
        digests = [msg for msg in mailbox.messages if msg["Subject"].startswith("Your peerlift digest")]
        assert Counter(msg["To"] for msg in digests) == Counter(m.email for m in members)
        assert len({msg["Message-ID"] for msg in digests}) == len(members)
        for msg in digests:
            body = msg.get_content()
            assert "new posts in your circles" in body
            assert "Walked to the park" not in body and "Well done" not in body  # counts, never content
