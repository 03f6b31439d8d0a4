/* The review app's script: CSRF header on every htmx request, the call page's player (click a transcript line
   to seek, evidence buttons play from a second before the span, the current line highlighted, playback speed) and
   the waveform drawn by wavesurfer.js from server-computed peaks through the page's <audio> element. */
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

  document.addEventListener('click', function (e) {
    var el = e.target.closest('[data-seek]');
    if (el) { e.preventDefault(); seek(parseFloat(el.getAttribute('data-seek')), true); }
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
          window.WaveSurfer.create({
            container: wf, media: a, peaks: p.channels, duration: p.duration, normalize: true,
            height: split ? 40 : 64, splitChannels: split ? [{}, {}] : undefined,
            waveColor: '#9aa5b1', progressColor: '#0072B2', cursorColor: '#d55e00', cspNonce: meta('csp-nonce')
          });
        })
        .catch(function () { wf.textContent = 'waveform unavailable'; });
    }
  }

  // deferred scripts run before DOMContentLoaded: wait for it, so the page's own scripts (wavesurfer.js) are loaded
  if (document.readyState === 'complete') { initCall(); } else { document.addEventListener('DOMContentLoaded', initCall); }
}());
