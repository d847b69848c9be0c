// Runs once in jest's main process, before test workers start (they inherit the environment).
// The server under test uses its generated self-signed certificate, and @xmpp/client offers
// no option to trust one certificate, so TLS verification is off for these loopback tests.
module.exports = async () => {
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
};
