/* The review app's script: CSRF header on every htmx request, the call page's player (click a transcript line
   to seek, evidence buttons play from a second before the span, the current line highlighted, playback speed), the
   waveform drawn by wavesurfer.js from server-computed peaks through the page's <audio> element (drag across it to
   select a stretch for a coaching mark), the evaluation panel's keyboard shortcuts (listed on the page) and the
   display of refused changes (a stale version, a closed dispute window) in the panel's alert box. */
(function () {
  'use strict';

  function meta(name) {
    var m = document.querySelector('meta[name="' + name + '"]');
    return m ? m.getAttribute('content') : '';
  }

  // hx-headers on <body> carries the token already; this also covers requests made from other elements' trees
  document.addEventListener('htmx:configRequest', function (e) {
    var token = meta('csrf-token');
    if (token) { e.detail.headers['X-CSRF-Token'] = token; }
  });

  function player() { return document.getElementById('player'); }

  function seek(t, play) {
    var a = player();
    if (!a || isNaN(t)) { return; }
    a.currentTime = Math.max(0, t);
    if (play) { a.play().catch(function () {}); }
  }

  // a refused change (stale version, closed window, bad input) is shown in the panel's alert box: the server
  // retargets its message there (HX-Retarget); htmx would otherwise drop 4xx answers
  document.addEventListener('htmx:beforeSwap', function (e) {
    var status = e.detail.xhr.status;
    if (status === 403 || status === 409 || status === 422) { e.detail.shouldSwap = true; e.detail.isError = false; }
  });

  // ---- the evaluation panel: the selected flag or item ------------------------------------------------------
  var selectedId = null;

  function targets() { return Array.prototype.slice.call(document.querySelectorAll('#evaluation tbody.vt')); }

  function select(row, play) {
    if (!row) { return; }
    targets().forEach(function (r) { r.classList.remove('selected'); });
    row.classList.add('selected');
    selectedId = row.id;
    row.focus({ preventScroll: false });
    var t = row.getAttribute('data-evidence');
    if (play && t !== null) { seek(parseFloat(t), true); }
  }

  function selected() {
    var row = selectedId && document.getElementById(selectedId);
    if (row) { return row; }
    var focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('tbody.vt');
    return focused || null;
  }

  function step(delta) {
    var rows = targets().filter(function (r) { return r.hasAttribute('data-evidence'); });
    if (!rows.length) { rows = targets(); }
    if (!rows.length) { return; }
    var i = rows.indexOf(selected());
    i = i < 0 ? (delta > 0 ? 0 : rows.length - 1) : (i + delta + rows.length) % rows.length;
    select(rows[i], true);
  }

  function verdict(key) {
    var row = selected();
    var button = row && row.querySelector('button[data-verdict-key="' + key + '"]');
    if (button) { button.click(); }
  }

  function pin(which) {
    var row = selected(), a = player();
    if (!row || !a) { return; }
    var input = row.querySelector(which === 'start' ? 'input.span-start' : 'input.span-end');
    if (input) { input.value = a.currentTime.toFixed(2); }
  }

  document.addEventListener('htmx:afterSwap', function () {
    var row = selectedId && document.getElementById(selectedId);
    if (row) { row.classList.add('selected'); }
  });

  // ---- coaching: a span from an evidence button, a transcript line or the waveform --------------------------
  function coachSpan(start, end, utterance) {
    var s = document.querySelector('.coach-form input.coach-start'), e = document.querySelector('.coach-form input.coach-end');
    if (!s || !e) { return; }
    s.value = parseFloat(start).toFixed(2);
    e.value = parseFloat(end).toFixed(2);
    var u = document.querySelector('.coach-form input.coach-utt');
    if (u) { u.value = utterance === undefined || utterance === null ? '' : utterance; }
    var sel = document.getElementById('selection');
    if (sel) { sel.textContent = 'selected ' + s.value + '–' + e.value + ' s'; }
  }

  document.addEventListener('click', function (e) {
    var coach = e.target.closest('button.coach');
    if (coach) {
      e.preventDefault();
      e.stopPropagation();
      coachSpan(coach.getAttribute('data-span-start'), coach.getAttribute('data-span-end'), coach.getAttribute('data-utterance'));
      var form = document.querySelector('.coach-form');
      if (form) { form.scrollIntoView({ block: 'nearest' }); }
      return;
    }
    var row = e.target.closest('#evaluation tbody.vt');
    if (row && !e.target.closest('form')) { select(row, false); }
    var el = e.target.closest('[data-seek]');
    if (el) { e.preventDefault(); seek(parseFloat(el.getAttribute('data-seek')), true); }
  });

  // ---- keyboard shortcuts (listed on the call page) -----------------------------------------------------------
  var SPEEDS = [0.75, 1, 1.25, 1.5, 1.75, 2];

  function setSpeed(delta) {
    var a = player(), sel = document.getElementById('speed');
    if (!a) { return; }
    var i = SPEEDS.indexOf(a.playbackRate);
    i = Math.max(0, Math.min(SPEEDS.length - 1, (i < 0 ? 1 : i) + delta));
    a.playbackRate = SPEEDS[i];
    if (sel) { sel.value = String(SPEEDS[i]); }
  }

  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var tag = (e.target.tagName || '').toLowerCase();
    if (tag === 'input' || tag === 'textarea' || tag === 'select' || e.target.isContentEditable) {
      if (e.key === 'Escape') { e.target.blur(); }
      return;
    }
    if (!document.getElementById('evaluation') && !player()) { return; }
    var a = player(), handled = true;
    switch (e.key) {
      case ' ':
        if (tag === 'button' || tag === 'a') { handled = false; break; }
        if (a) { if (a.paused) { a.play().catch(function () {}); } else { a.pause(); } }
        break;
      case 'ArrowLeft': if (a) { a.currentTime = Math.max(0, a.currentTime - 5); } break;
      case 'ArrowRight': if (a) { a.currentTime = a.currentTime + 5; } break;
      case '<': case ',': setSpeed(-1); break;
      case '>': case '.': setSpeed(1); break;
      case 'n': step(1); break;
      case 'p': step(-1); break;
      case 'c': verdict('c'); break;
      case 'o': verdict('o'); break;
      case '1': verdict('1'); break;
      case '2': verdict('2'); break;
      case '[': pin('start'); break;
      case ']': pin('end'); break;
      case '?':
        var help = document.querySelector('details.shortcuts');
        if (help) { help.open = !help.open; }
        break;
      default: handled = false;
    }
    if (handled) { e.preventDefault(); }
  });
  document.addEventListener('keydown', function (e) {
    var el = e.target.closest && e.target.closest('li[data-seek]');
    if (el && e.key === 'Enter') { seek(parseFloat(el.getAttribute('data-seek')), true); }
  });

  function initCall() {
    var a = player();
    if (!a) { return; }
    var lines = Array.prototype.slice.call(document.querySelectorAll('.transcript li[data-start]'));
    var current = null;
    a.addEventListener('timeupdate', function () {
      var t = a.currentTime, found = null;
      for (var i = 0; i < lines.length; i++) {
        var s = parseFloat(lines[i].getAttribute('data-start')), x = parseFloat(lines[i].getAttribute('data-end'));
        if (t >= s && t < x) { found = lines[i]; break; }
      }
      if (found !== current) {
        if (current) { current.classList.remove('playing'); }
        if (found) { found.classList.add('playing'); }
        current = found;
      }
    });
    var speed = document.getElementById('speed');
    if (speed) { speed.addEventListener('change', function () { a.playbackRate = parseFloat(speed.value); }); }
    var wf = document.getElementById('waveform');
    if (wf && window.WaveSurfer) {
      fetch(wf.getAttribute('data-peaks'), { credentials: 'same-origin' })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (p) {
          var split = p.channels.length > 1;
          var ws = window.WaveSurfer.create({
            container: wf, media: a, peaks: p.channels, duration: p.duration, normalize: true,
            height: split ? 40 : 64, splitChannels: split ? [{}, {}] : undefined,
            waveColor: '#9aa5b1', progressColor: '#0072B2', cursorColor: '#d55e00', cspNonce: meta('csp-nonce')
          });
          // drag across the waveform to select a stretch (a coaching mark's span); one selection at a time
          if (window.WaveSurfer.Regions && document.querySelector('.coach-form')) {
            var regions = ws.registerPlugin(window.WaveSurfer.Regions.create());
            regions.enableDragSelection({ color: 'rgba(230, 159, 0, 0.25)' });
            var take = function (region) {
              regions.getRegions().forEach(function (r) { if (r !== region) { r.remove(); } });
              coachSpan(region.start, region.end, null);
            };
            regions.on('region-created', take);
            regions.on('region-updated', take);
          }
        })
        .catch(function () { wf.textContent = 'waveform unavailable'; });
    }
  }

  // deferred scripts run before DOMContentLoaded: wait for it, so the page's own scripts (wavesurfer.js) are loaded
  if (document.readyState === 'complete') { initCall(); } else { document.addEventListener('DOMContentLoaded', initCall); }
}());
