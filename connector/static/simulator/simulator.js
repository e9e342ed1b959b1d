/*
 * Journey Builder's side of the activity, simulated for a local stack (see
 * connector/sfmc/simulator.py): Postmonger to the framed activity UI, then "Run the journey"
 * posts N signed execute bodies to /sfmc/execute, as Journey Builder does, and shows the send.
 */
(function () {
  'use strict';

  var config = JSON.parse(document.body.getAttribute('data-config'));
  var origin = window.location.origin;
  var frame = document.getElementById('activity');
  var session = new Postmonger.Session({ connect: frame, from: origin, to: origin });
  var activity = {
    id: config.activityId,
    key: 'REST-1',
    name: 'Punchh Offer',
    type: 'REST',
    outcomes: [{ key: 'outcome-1', next: null }],
    arguments: {
      execute: { inArguments: [], outArguments: [], url: origin + '/sfmc/execute', useJwt: true }
    },
    configurationArguments: { validate: { url: origin + '/sfmc/validate', useJwt: true } },
    metaData: { isConfigured: false }
  };

  function $(id) { return document.getElementById(id); }

  function log(text) {
    var item = document.createElement('li');
    item.textContent = text;
    $('jb-log').appendChild(item);
  }

  function answer(request, reply, payload) {
    session.on(request, function () {
      log(request + ' → ' + reply);
      session.trigger(reply, payload);
    });
  }

  session.on('ready', function () {
    log('ready → initActivity');
    session.trigger('initActivity', JSON.parse(JSON.stringify(activity)));
  });
  answer('requestTokens', 'requestedTokens',
    { token: 'simulated-legacy-token', fuel2token: config.token, expires: 1200 });
  answer('requestEndpoints', 'requestedEndpoints', { restHost: origin, fuelapiRestHost: origin });
  answer('requestInteraction', 'requestedInteraction', config.interaction);
  answer('requestSchema', 'requestedSchema', { schema: config.schema });
  session.on('updateActivity', function (updated) {
    log('updateActivity (the activity was saved)');
    activity = updated;
    var args = (updated.arguments.execute.inArguments || [])[0] || {};
    $('saved').textContent = 'Configured: ' + (args.punchh_redeemable || '?') + ' to ' +
      (args.punchh_segment || '?') + '. Each {{binding}} resolves to the run\'s id.';
    $('in-arguments').textContent = JSON.stringify(updated.arguments.execute.inArguments, null, 2);
    $('in-arguments').hidden = false;
    $('run').disabled = false;
  });
  frame.src = '/sfmc/index.html';

  $('jb-done').addEventListener('click', function () {
    log('clickedNext (Journey Builder\'s Done)');
    session.trigger('clickedNext');
  });

  function postJson(path, body) {
    return fetch(path, {
      method: 'POST', credentials: 'omit',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { throw new Error((data.error && data.error.message) || response.status); }
        return data;
      });
    });
  }

  // Journey Builder calls execute with a few contacts at a time.
  function sendAll(bodies, parallel) {
    var next = 0, answers = [];
    function worker() {
      if (next >= bodies.length) { return Promise.resolve(); }
      var body = bodies[next++];
      return fetch('/sfmc/execute', {
        method: 'POST', credentials: 'omit',
        headers: { 'Content-Type': 'application/jwt' }, body: body
      }).then(function (response) {
        return response.json().then(function (data) {
          answers.push({ status: response.status, data: data });
          $('progress').textContent = answers.length + ' of ' + bodies.length + ' contacts sent';
        });
      }).then(worker);
    }
    var workers = [];
    for (var i = 0; i < parallel; i++) { workers.push(worker()); }
    return Promise.all(workers).then(function () { return answers; });
  }

  function watch(id, deadline) {
    return fetch('/sfmc/simulator/distributions/' + encodeURIComponent(id), { credentials: 'omit' })
      .then(function (response) { return response.json(); })
      .then(function (send) {
        $('state').textContent = send.state;
        $('recipients').textContent = send.recipients;
        $('campaign').textContent = send.campaign_id === null ? '— (not yet)' : String(send.campaign_id);
        $('last-error').textContent = send.last_error || 'none';
        $('status-link').href = send.status_page;
        var settled = ['committed', 'rejected', 'failed', 'unknown', 'held', 'cancelled'];
        if (settled.indexOf(send.state) < 0 && Date.now() < deadline) {
          return new Promise(function (resolve) { setTimeout(resolve, 500); })
            .then(function () { return watch(id, deadline); });
        }
        $('progress').textContent = 'The journey ran: ' + send.state + '.';
        return send;
      });
  }

  $('run').addEventListener('click', function () {
    var contacts = parseInt($('contacts').value, 10) || 1;
    $('run').disabled = true;
    $('progress').textContent = 'Signing ' + contacts + ' execute calls…';
    postJson('/sfmc/simulator/bodies',
      { activity: activity, journeyId: config.journeyId, contacts: contacts })
      .then(function (run) { return sendAll(run.bodies, 5); })
      .then(function (answers) {
        var ids = {};
        answers.forEach(function (a) {
          if (a.data && a.data.punchh_distribution_id) { ids[a.data.punchh_distribution_id] = 1; }
        });
        var distinct = Object.keys(ids);
        $('sent').textContent = answers.length + ' (' + distinct.length + ' send' +
          (distinct.length === 1 ? '' : 's') + ')';
        $('result').hidden = false;
        if (!distinct.length) { throw new Error('no contact was accepted'); }
        $('distribution').textContent = distinct[0];
        return watch(distinct[0], Date.now() + 60000);
      })
      .catch(function (err) { $('progress').textContent = 'Failed: ' + err.message; })
      .then(function () { $('run').disabled = false; });
  });
}());
