// The password grant with MFA through the official Auth0 JavaScript SDKs, pointed at the
// flowengine emulator (https, its certificate trusted through NODE_EXTRA_CA_CERTS).
//
//   node flows.mjs '{"domain": "localhost:8443", "clientId": ..., "clientSecret": ...,
//                    "audience": ..., "scope": ..., "users": {...}}'
//
// Prints one JSON object: each step's name and what it showed, or the step that failed and why
// (then exits 1). Run by tests/test_sdk_compat.py::test_javascript_sdks.

import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";

import { AuthClient, isMfaRequiredError } from "@auth0/auth0-auth-js";
import { AuthenticationClient } from "auth0";

const config = JSON.parse(process.argv[2]);
const { domain, clientId, clientSecret, audience, scope, users } = config;
const steps = [];

function versionOf(name) {
  const path = new URL(`./node_modules/${name}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(path, "utf8")).version;
}

// RFC 6238 TOTP (SHA1, 6 digits, 30 s) of a base32 secret, `offset` steps from now.
function totp(secret, offset = 0) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const char of secret.replace(/=+$/, "").toUpperCase()) {
    bits += alphabet.indexOf(char).toString(2).padStart(5, "0");
  }
  const bytes = Buffer.alloc(Math.floor(bits.length / 8));
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + offset));
  const mac = createHmac("sha1", bytes).update(counter).digest();
  const start = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(start) & 0x7fffffff) % 1000000).padStart(6, "0");
}

async function lastCode(username) {
  const url = `https://${domain}/_emulator/inbox/${encodeURIComponent(username)}?channel=sms`;
  const { messages } = await (await fetch(url)).json();
  return messages[messages.length - 1].code;
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function step(name, run) {
  try {
    steps.push({ name, ...(await run()) });
  } catch (error) {
    const detail = error.cause ? ` ${JSON.stringify(error.cause)}` : "";
    console.log(JSON.stringify({ steps, failed: name, error: `${error.name}: ${error.message}${detail}` }));
    process.exit(1);
  }
}

const authJs = new AuthClient({ domain, clientId, clientSecret });
const nodeAuth0 = new AuthenticationClient({ domain, clientId, clientSecret });

async function mfaToken(username, password) {
  try {
    await authJs.getTokenByPassword({ username, password, audience, scope });
  } catch (error) {
    if (isMfaRequiredError(error)) return error.cause.mfa_token;
    throw error;
  }
  throw new Error("the password grant did not answer mfa_required");
}

// --- @auth0/auth0-auth-js: every step of the flow has a method ---------------------------
let enrolled;
let tokens;
const newUser = users.new;

await step("auth-js: getTokenByPassword raises mfa_required", async () => {
  const token = await mfaToken(newUser.username, newUser.password);
  check(token.startsWith("Fe26.2*"), `mfa_token ${token}`);
  return {};
});

await step("auth-js: mfa.enrollAuthenticator otp, mfa.verify otp", async () => {
  const token = await mfaToken(newUser.username, newUser.password);
  const before = await authJs.mfa.listAuthenticators({ mfaToken: token });
  check(before.length === 0, `authenticators before enrolling: ${JSON.stringify(before)}`);
  enrolled = await authJs.mfa.enrollAuthenticator({ authenticatorTypes: ["otp"], mfaToken: token });
  check(enrolled.barcodeUri.startsWith("otpauth://totp/"), `barcodeUri ${enrolled.barcodeUri}`);
  check(enrolled.recoveryCodes.length === 1, "one recovery code");
  tokens = await authJs.mfa.verify({ mfaToken: token, factorType: "otp", otp: totp(enrolled.secret) });
  check(tokens.accessToken && tokens.idToken && tokens.refreshToken, "access, id and refresh tokens");
  const after = await authJs.mfa.listAuthenticators({ mfaToken: token });
  return { authenticators: after.map((a) => [a.authenticatorType, a.active]) };
});

await step("auth-js: mfa.challengeAuthenticator sms, mfa.verify oob", async () => {
  const sms = users.sms;
  const token = await mfaToken(sms.username, sms.password);
  const listed = await authJs.mfa.listAuthenticators({ mfaToken: token });
  const phone = listed.find((a) => a.id.startsWith("sms|"));
  const sent = await authJs.mfa.challengeAuthenticator({
    challengeType: "oob",
    authenticatorId: phone.id,
    mfaToken: token,
  });
  check(sent.bindingMethod === "prompt", `bindingMethod ${sent.bindingMethod}`);
  const result = await authJs.mfa.verify({
    mfaToken: token,
    factorType: "oob",
    oobCode: sent.oobCode,
    bindingCode: await lastCode(sms.username),
  });
  check(result.accessToken, "an access token");
  // The SDK reads a plural `oob_channels` that the wire (go-auth0's recordings) does not have.
  return { oobChannels: phone.oobChannels ?? null };
});

await step("auth-js: mfa.verify recovery-code rotates the code", async () => {
  const token = await mfaToken(newUser.username, newUser.password);
  const [code] = enrolled.recoveryCodes;
  const result = await authJs.mfa.verify({ mfaToken: token, factorType: "recovery-code", recoveryCode: code });
  check(result.recoveryCode && result.recoveryCode !== code, `new recovery code ${result.recoveryCode}`);
  return {};
});

await step("auth-js: getTokenByRefreshToken", async () => {
  const refreshed = await authJs.getTokenByRefreshToken({ refreshToken: tokens.refreshToken });
  check(refreshed.accessToken && refreshed.idToken, "access and id tokens");
  return { scope: refreshed.scope };
});

await step("auth-js: getUserInfo", async () => {
  const profile = await authJs.getUserInfo({ accessToken: tokens.accessToken });
  check(profile.email === newUser.username, `email ${profile.email}`);
  return {};
});

await step("auth-js: push challenge pending until approved, then mfa.verify oob", async () => {
  const push = users.push;
  const token = await mfaToken(push.username, push.password);
  const listed = await authJs.mfa.listAuthenticators({ mfaToken: token });
  const device = listed.find((a) => a.id.startsWith("push|"));
  const sent = await authJs.mfa.challengeAuthenticator({
    challengeType: "oob",
    authenticatorId: device.id,
    mfaToken: token,
  });
  check(sent.oobCode && sent.bindingMethod === undefined, `push challenge ${JSON.stringify(sent)}`);
  let pending;
  try {
    await authJs.mfa.verify({ mfaToken: token, factorType: "oob", oobCode: sent.oobCode });
  } catch (error) {
    pending = error;
  }
  check(pending?.cause?.error === "authorization_pending", `before approval: ${pending}`);
  const url = `https://${domain}/_emulator/push/${encodeURIComponent(push.username)}/approve`;
  check((await fetch(url, { method: "POST" })).ok, "approved through the control API");
  const result = await authJs.mfa.verify({ mfaToken: token, factorType: "oob", oobCode: sent.oobCode });
  check(result.accessToken, "an access token");
  return {};
});

await step("auth-js: mfa.deleteAuthenticator with an MFA-API access token", async () => {
  const sms = users.sms;
  let token;
  try {
    await authJs.getTokenByPassword({
      username: sms.username,
      password: sms.password,
      audience: `https://${domain}/mfa/`,
      scope: "enroll read:authenticators remove:authenticators",
    });
  } catch (error) {
    if (!isMfaRequiredError(error)) throw error;
    token = error.cause.mfa_token;
  }
  const listed = await authJs.mfa.listAuthenticators({ mfaToken: token });
  const phone = listed.find((a) => a.id.startsWith("sms|"));
  const sent = await authJs.mfa.challengeAuthenticator({ challengeType: "oob", authenticatorId: phone.id, mfaToken: token });
  const code = await lastCode(sms.username);
  const mfaApi = await authJs.mfa.verify({ mfaToken: token, factorType: "oob", oobCode: sent.oobCode, bindingCode: code });
  // The SDK names the bearer mfaToken; deleting takes an access token for the MFA API (§8).
  await authJs.mfa.deleteAuthenticator({ authenticatorId: phone.id, mfaToken: mfaApi.accessToken });
  const left = await authJs.mfa.listAuthenticators({ mfaToken: mfaApi.accessToken });
  check(!left.some((a) => a.id === phone.id), `still listed: ${JSON.stringify(left)}`);
  return { left: left.map((a) => a.id.split("|")[0]) };
});

// --- auth0 (node-auth0): AuthenticationClient has the password and refresh grants -----------
await step("node-auth0: oauth.passwordGrant answers 403 mfa_required", async () => {
  try {
    await nodeAuth0.oauth.passwordGrant({ username: users.sms.username, password: users.sms.password, audience, scope });
  } catch (error) {
    check(error.name === "AuthApiError", `${error.name}: ${error.message}`);
    check(error.statusCode === 403 && error.error === "mfa_required", `${error.statusCode} ${error.error}`);
    check(JSON.parse(error.body).mfa_token.startsWith("Fe26.2*"), "an mfa_token");
    return {};
  }
  throw new Error("no error");
});

await step("node-auth0: oauth.passwordGrant without MFA validates the ID token", async () => {
  const { username, password } = users.noMfa;
  const { data } = await nodeAuth0.oauth.passwordGrant({ username, password, audience, scope });
  check(data.id_token && data.refresh_token, "id and refresh tokens");
  return {};
});

await step("node-auth0: oauth.refreshTokenGrant validates the ID token", async () => {
  const { data } = await nodeAuth0.oauth.refreshTokenGrant({ refresh_token: tokens.refreshToken });
  check(data.access_token && data.id_token, "access and id tokens");
  return { scope: data.scope };
});

console.log(
  JSON.stringify({
    steps,
    versions: { "@auth0/auth0-auth-js": versionOf("@auth0/auth0-auth-js"), auth0: versionOf("auth0") },
  }),
);
