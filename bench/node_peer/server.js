// The Node.js version of POST /send-sms that a user would otherwise pick, written the way
// the usual guide writes it: Express 5, one Vonage client at module level, presence-only
// checks, one messages.send call. The benchmark's peer (bench/node_peer.py starts it).
//
// Environment: VONAGE_APPLICATION_ID, VONAGE_APPLICATION_PRIVATE_KEY_PATH, VONAGE_NUMBER,
// VONAGE_API_HOST (host[:port], default api.nexmo.com) and PORT. To trust a private CA (the
// emulator's), set NODE_EXTRA_CA_CERTS to its PEM file.
'use strict';

const express = require('express');
const { Vonage } = require('@vonage/server-sdk');

// The SDK takes its Messages API base URL, scheme included, from the `apiHost` option.
const vonage = new Vonage(
  {
    applicationId: process.env.VONAGE_APPLICATION_ID,
    privateKey: process.env.VONAGE_APPLICATION_PRIVATE_KEY_PATH, // a path is read once here
  },
  { apiHost: `https://${process.env.VONAGE_API_HOST || 'api.nexmo.com'}` },
);

const app = express();
app.use(express.json());

app.get('/health', (req, res) => {
  res.json({ status: 'ok' });
});

app.post('/send-sms', async (req, res) => {
  const { to, text } = req.body || {};
  if (!to || !text) {
    return res.status(400).json({ success: false, error: 'to and text are required' });
  }
  try {
    const response = await vonage.messages.send({
      message_type: 'text',
      channel: 'sms',
      to,
      from: process.env.VONAGE_NUMBER,
      text,
    });
    // One line per SMS sent, as the guides' console.log(response); JSON so the benchmark can
    // match every 200 to a message the upstream accepted.
    console.log(JSON.stringify({ path: '/send-sms', status: 200, message_uuid: response.messageUUID }));
    return res.json({ success: true, message_uuid: response.messageUUID });
  } catch (error) {
    console.error(JSON.stringify({ path: '/send-sms', status: 500, error: error.message }));
    return res.status(500).json({ success: false, error: 'failed to send SMS' });
  }
});

const port = Number(process.env.PORT || 3000);
app.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${port}`);
});
