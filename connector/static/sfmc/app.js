/*
 * Punchh Offer: the configuration UI Journey Builder frames.
 *
 * Talks to Journey Builder through Postmonger: `ready` → `initActivity` restores the saved
 * configuration; `requestTokens` → `requestedTokens` gives the marketer's Marketing Cloud
 * token, which authorises this page's calls to the connector (and never goes into the
 * activity: inArguments travel with every contact). Done checks the offer with the connector,
 * writes arguments.execute.inArguments, sets metaData.isConfigured and triggers updateActivity.
 */
(function () {
  'use strict';

  var connection = new Postmonger.Session();
  var activity = {};
  var interaction = null;
  var token = null;
  var tokenWaiters = [];
  var chosen = { segment: '', redeemable: '' };
  var saving = false;
  var connected = false;
  // Journey Builder answers `ready` at once; outside it nobody does, and "Connecting…" would
  // stay forever. After this long, say what the page is and where it runs.
  var STANDALONE_AFTER_MS = 3000;

  function $(id) { return document.getElementById(id); }

  function showError(message) {
    var box = $('error');
    box.textContent = message || '';
    box.hidden = !message;
  }

  function setStatus(message) { $('status').textContent = message; }

  // --- Journey Builder's side -----------------------------------------------------------

  connection.on('initActivity', function (payload) {
    connected = true;
    $('standalone').hidden = true;
    activity = payload || {};
    restore(activity);
    setStatus('Loaded');
  });

  connection.on('requestedTokens', function (tokens) {
    token = (tokens && (tokens.fuel2token || tokens.token)) || null;
    var waiters = tokenWaiters;
    tokenWaiters = [];
    waiters.forEach(function (resolve) { resolve(token); });
    if (token && !$('segment').options.length) {
      loadList('segments', '');
      loadList('redeemables', '');
    }
  });

  connection.on('requestedInteraction', function (data) { interaction = data || null; });

  connection.on('requestedSchema', function (data) {
    var fields = (data && data.schema) || [];
    ['run-id-field', 'guest-binding-field'].forEach(function (id) {
      var select = $(id);
      fields.forEach(function (field) {
        if (!field || !field.key) { return; }
        var option = document.createElement('option');
        option.value = '{{' + field.key + '}}';
        option.textContent = field.key;
        select.appendChild(option);
      });
    });
  });

  // Journey Builder's own Done/Next button (configModal) saves as ours does.
  connection.on('clickedNext', function () { done(); });

  function fetchToken(fresh) {
    if (token && !fresh) { return Promise.resolve(token); }
    return new Promise(function (resolve) {
      tokenWaiters.push(resolve);
      connection.trigger('requestTokens');
    });
  }

  // --- the connector's API --------------------------------------------------------------

  function api(method, path, body, retried) {
    return fetchToken(false).then(function (bearer) {
      if (!bearer) { throw new Error('Journey Builder gave no Marketing Cloud token; reopen the activity.'); }
      var options = {
        method: method,
        headers: { 'Authorization': 'Bearer ' + bearer, 'Accept': 'application/json' },
        credentials: 'omit'
      };
      if (body !== undefined) {
        options.headers['Content-Type'] = 'application/json';
        options.body = JSON.stringify(body);
      }
      return fetch(path, options).then(function (response) {
        if (response.status === 401 && !retried) {
          // The token expired while the page was open: ask Journey Builder for a fresh one.
          return fetchToken(true).then(function () { return api(method, path, body, true); });
        }
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (!response.ok) {
            var message = (data && data.error && data.error.message) || ('HTTP ' + response.status);
            throw new Error(message);
          }
          return data;
        });
      });
    });
  }

  // --- pickers --------------------------------------------------------------------------

  var NOUN = { segments: 'segment', redeemables: 'redeemable' };
  var timers = {};

  function loadList(kind, query) {
    var noun = NOUN[kind];
    return api('GET', 'api/' + kind + '?query=' + encodeURIComponent(query || ''))
      .then(function (data) { fillList(noun, data.items || []); })
      .catch(function (err) { showError('Could not load Punchh ' + kind + ': ' + err.message); });
  }

  function fillList(noun, items) {
    var select = $(noun);
    var counts = {};
    items.forEach(function (item) { counts[item.name] = (counts[item.name] || 0) + 1; });
    while (select.firstChild) { select.removeChild(select.firstChild); }
    items.forEach(function (item) {
      var option = document.createElement('option');
      option.value = item.name;
      var label = item.name;
      if (noun === 'segment' && item.segment_id !== undefined) { label += '  · #' + item.segment_id; }
      if (noun === 'redeemable' && item.description) { label += '  — ' + item.description; }
      if (counts[item.name] > 1) { label += '  (name not unique in Punchh)'; }
      option.textContent = label;
      if (item.name === chosen[noun]) { option.selected = true; }
      select.appendChild(option);
    });
  }

  function choose(noun, name) {
    chosen[noun] = name || '';
    $(noun + '-chosen').textContent = chosen[noun] || 'none';
    $('saved').hidden = true;
  }

  ['segment', 'redeemable'].forEach(function (noun) {
    var kind = noun + 's';
    $(noun + '-search').addEventListener('input', function (event) {
      clearTimeout(timers[kind]);
      var query = event.target.value.trim();
      timers[kind] = setTimeout(function () { loadList(kind, query); }, 250);
    });
    $(noun).addEventListener('change', function (event) { choose(noun, event.target.value); });
  });

  $('run-id-field').addEventListener('change', function (event) {
    if (event.target.value) { $('run-id').value = event.target.value; }
    event.target.value = '';
  });

  $('guest-binding-field').addEventListener('change', function (event) {
    if (event.target.value) { $('guest-binding').value = event.target.value; }
    event.target.value = '';
  });

  // --- audience: a Punchh segment, or the journey's own contacts ------------------------

  function audience() {
    var picked = document.querySelector('input[name="audience"]:checked');
    return picked ? picked.value : 'segment';
  }

  function showAudience(value) {
    Array.prototype.forEach.call(document.querySelectorAll('input[name="audience"]'), function (radio) {
      radio.checked = radio.value === value;
    });
    $('segment-picker').hidden = value === 'recipients';
    $('guest-field').hidden = value !== 'recipients';
  }

  Array.prototype.forEach.call(document.querySelectorAll('input[name="audience"]'), function (radio) {
    radio.addEventListener('change', function () { showAudience(audience()); $('saved').hidden = true; });
  });

  // --- restore and save -----------------------------------------------------------------

  function inArguments(act) {
    var execute = (act.arguments && act.arguments.execute) || {};
    var merged = {};
    (execute.inArguments || []).forEach(function (item) {
      if (item && typeof item === 'object') {
        Object.keys(item).forEach(function (key) { merged[key] = item[key]; });
      }
    });
    return merged;
  }

  function pad(n) { return (n < 10 ? '0' : '') + n; }

  function toLocalInput(iso) {
    var when = new Date(iso);
    if (isNaN(when.getTime())) { return ''; }
    return when.getFullYear() + '-' + pad(when.getMonth() + 1) + '-' + pad(when.getDate()) +
      'T' + pad(when.getHours()) + ':' + pad(when.getMinutes());
  }

  function toUtcIso(local) {
    if (!local) { return ''; }
    var when = new Date(local);
    if (isNaN(when.getTime())) { return ''; }
    return when.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  function restore(act) {
    var args = inArguments(act);
    choose('segment', args.punchh_segment);
    choose('redeemable', args.punchh_redeemable);
    $('run-id').value = args.run_id || '';
    $('start-time').value = args.start_time ? toLocalInput(args.start_time) : '';
    $('campaign-name').value = args.punchh_campaign_name || '';
    showAudience(args.punchh_audience === 'recipients' ? 'recipients' : 'segment');
    $('guest-binding').value = args.punchh_user_id || args.email || '';
    $('guest-is-email').checked = Boolean(args.email) && !args.punchh_user_id;
    ['segment', 'redeemable'].forEach(function (noun) {
      Array.prototype.forEach.call($(noun).options, function (option) {
        option.selected = option.value === chosen[noun];
      });
    });
  }

  function done() {
    if (saving) { return; }
    showError('');
    var runId = $('run-id').value.trim();
    var startTime = toUtcIso($('start-time').value);
    var campaignName = $('campaign-name').value.trim();
    var recipients = audience() === 'recipients';
    var binding = $('guest-binding').value.trim();
    if (recipients && !chosen.redeemable) {
      showError('Pick a Punchh redeemable.');
      return;
    }
    if (!recipients && (!chosen.segment || !chosen.redeemable)) {
      showError('Pick a Punchh segment and a Punchh redeemable.');
      return;
    }
    if (recipients && !/^\{\{.*\}\}$/.test(binding)) {
      showError('Bind each contact\'s Punchh user id (or email) to a data extension column, such as {{Contact.Attribute.Guests.punchh_user_id}}.');
      return;
    }
    if (/\{\{\s*Contact\./i.test(runId)) {
      showError('The run id must be the same for every contact of a run; a Contact field would make one campaign per contact.');
      return;
    }
    var hasId = Boolean(activity.id);
    var ref = activity.id || activity.key || 'new';
    var body = {
      segment: recipients ? '' : chosen.segment,
      audience: recipients ? 'recipients' : 'segment',
      guest_binding: recipients ? binding : '',
      redeemable: chosen.redeemable,
      run_id: runId,
      start_time: startTime,
      campaign_name: campaignName,
      activity_key: activity.key || '',
      interaction_id: (interaction && interaction.id) || '',
      interaction_key: (interaction && interaction.key) || '',
      draft: !hasId
    };
    saving = true;
    $('done').disabled = true;
    setStatus('Checking the offer in Punchh…');
    api('POST', 'api/activities/' + encodeURIComponent(ref), body)
      .then(function () {
        var args = recipients
          ? { punchh_audience: 'recipients', punchh_redeemable: chosen.redeemable }
          : { punchh_segment: chosen.segment, punchh_redeemable: chosen.redeemable };
        if (recipients) { args[$('guest-is-email').checked ? 'email' : 'punchh_user_id'] = binding; }
        if (runId) { args.run_id = runId; }
        if (startTime) { args.start_time = startTime; }
        if (campaignName) { args.punchh_campaign_name = campaignName; }
        activity.arguments = activity.arguments || {};
        activity.arguments.execute = activity.arguments.execute || {};
        activity.arguments.execute.inArguments = [args];
        activity.metaData = activity.metaData || {};
        activity.metaData.isConfigured = true;
        connection.trigger('updateActivity', activity);
        $('saved').hidden = false;
        setStatus('Saved');
      })
      .catch(function (err) {
        showError(err.message);
        setStatus('Not saved');
      })
      .then(function () {
        saving = false;
        $('done').disabled = false;
      });
  }

  $('done').addEventListener('click', done);

  connection.trigger('ready');
  setTimeout(function () {
    if (connected) { return; }
    setStatus('Not inside Journey Builder');
    $('standalone').hidden = false;
  }, STANDALONE_AFTER_MS);
  connection.trigger('requestTokens');
  connection.trigger('requestInteraction');
  connection.trigger('requestSchema');
}());
