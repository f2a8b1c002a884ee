// peerlift live updates: one EventSource per page; the pages work without it.
(function () {
  "use strict";
  if (!window.EventSource || !document.body.dataset.userId) return;
  var me = Number(document.body.dataset.userId);
  var feed = document.getElementById("feed");
  var thread = document.getElementById("thread");
  var messages = document.getElementById("messages");
  var circleId = feed ? Number(feed.dataset.circleId) : null;
  var liveFeed = feed && feed.dataset.liveFeed === "true";
  var threadPostId = thread ? Number(thread.dataset.postId) : null;

  function fetchHTML(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; });
  }
  function fragment(html) {
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }
  function setBadge(id, count) {
    var badge = document.getElementById(id);
    if (!badge) return;
    badge.dataset.count = String(count);
    badge.firstChild.nodeValue = String(count);
    badge.hidden = count <= 0;
  }
  function bumpBadge(id) {
    var badge = document.getElementById(id);
    if (badge) setBadge(id, Number(badge.dataset.count || 0) + 1);
  }
  function cardOf(postId) { return document.getElementById("post-" + postId); }
  function refreshCard(postId) {
    var card = cardOf(postId);
    if (!card) return;
    var full = thread && postId === threadPostId ? "&full=1" : "";
    fetchHTML("/posts/" + postId + "/card?back=" + encodeURIComponent(location.pathname) + full).then(function (html) {
      if (html) card.replaceWith(fragment(html));
    });
  }
  function refreshThread() {
    var typing = Array.prototype.some.call(thread.querySelectorAll("textarea"), function (t) { return t.value.trim(); });
    if (typing) { document.getElementById("thread-notice").hidden = false; return; }
    fetchHTML("/posts/" + threadPostId + "/thread").then(function (html) {
      if (html) { var fresh = fragment(html); thread.replaceWith(fresh); thread = fresh; }
    });
  }
  function onPostEvent(type, data) {
    if (type === "post.created") {
      if (liveFeed && data.circle_id === circleId && !cardOf(data.post_id)) {
        fetchHTML("/posts/" + data.post_id + "/card?back=" + encodeURIComponent(location.pathname)).then(function (html) {
          if (!html || cardOf(data.post_id)) return;
          var empty = feed.querySelector(".empty");
          if (empty) empty.remove();
          feed.insertBefore(fragment(html), feed.firstElementChild);
        });
      }
      if (data.actor_id !== me) {
        var row = document.querySelector('.circle-list [data-circle-id="' + data.circle_id + '"]');
        if (row) {
          var badge = row.querySelector(".badge");
          if (!badge) {
            badge = document.createElement("span");
            badge.className = "badge";
            badge.dataset.unread = "0";
            row.querySelector(".circle-name").after(" ", badge);
          }
          badge.dataset.unread = String(Number(badge.dataset.unread) + 1);
          badge.textContent = badge.dataset.unread + " new";
        }
      }
      return;
    }
    if (type === "post.deleted") { var gone = cardOf(data.post_id); if (gone) gone.remove(); return; }
    if (data.post_id) refreshCard(data.post_id);
    if (thread && data.post_id === threadPostId && type.indexOf("comment.") === 0) refreshThread();
    if (thread && data.post_id === threadPostId && data.comment_id && type.indexOf("reaction.") === 0) refreshThread();
  }

  var source = new EventSource("/api/v1/stream");
  ["post.created", "post.edited", "post.deleted", "post.pinned", "post.unpinned", "comment.created",
   "comment.edited", "comment.deleted", "reaction.added", "reaction.removed", "poll.voted"].forEach(function (type) {
    source.addEventListener(type, function (e) { onPostEvent(type, JSON.parse(e.data)); });
  });
  source.addEventListener("notification.created", function () { bumpBadge("nav-notifications"); });
  source.addEventListener("notifications.read", function (e) {
    setBadge("nav-notifications", JSON.parse(e.data).unread_count);
  });
  source.addEventListener("message.created", function (e) {
    var data = JSON.parse(e.data);
    if (messages && Number(messages.dataset.conversationId) === data.conversation_id) {
      fetchHTML("/messages/" + data.conversation_id + "/fragment").then(function (html) {
        if (html) { var fresh = fragment(html); messages.replaceWith(fresh); messages = fresh; }
      });
    } else if (data.recipient_id === me) {
      bumpBadge("nav-messages");
    }
  });
  var inbox = document.getElementById("inbox");
  function refreshInbox() {
    var typing = Array.prototype.some.call(inbox.querySelectorAll("textarea"), function (t) { return t.value.trim(); });
    if (typing) return;
    fetchHTML("/inbox/fragment").then(function (html) {
      if (html) { var fresh = fragment(html); inbox.replaceWith(fresh); inbox = fresh; }
    });
  }
  source.addEventListener("inbox.card_created", function () {
    if (inbox) refreshInbox(); else bumpBadge("nav-inbox");
  });
  source.addEventListener("inbox.card_updated", function () { if (inbox) refreshInbox(); });
  source.addEventListener("resync", function () { if (!document.querySelector("textarea:focus")) location.reload(); });
  document.documentElement.dataset.live = "connected";
})();
