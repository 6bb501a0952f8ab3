#!/usr/bin/env bash
# Runs the C host example and checks its output: it must exit 0, print nothing on stderr, and
# print every expected line below, in this order (other lines may come in between). Each
# expected line is an extended regular expression matched against a whole output line.
#
#   examples/c-host/check.sh PATH/TO/c-host
set -euo pipefail

bin=${1:?usage: check.sh PATH/TO/c-host}
out=$(mktemp) errout=$(mktemp)
trap 'rm -f "$out" "$errout"' EXIT

fail() {
    echo "c-host-check: FAILED: $*" >&2
    echo "--- stdout of $bin" >&2
    cat "$out" >&2
    echo "--- stderr of $bin" >&2
    cat "$errout" >&2
    exit 1
}

status=0
"$bin" >"$out" 2>"$errout" || status=$?
[[ $status -eq 0 ]] || fail "exit status $status"
[[ ! -s $errout ]] || fail "it wrote to stderr"

expected=$(cat <<'EOF'
twofa C host example \(libtwofa [0-9]+\.[0-9]+\.[0-9]+\)
The clock starts at 1700000000\.
== Checking the store
The in-memory store passed all 13 conformance checks\.
== The account places its first order
Methods: +none
2FA required: +yes
Compliant: +no
Recommendations: +enable_two_factor
Warnings: +no_notice_address
== Enrolling an authenticator app
  otpauth://totp/Example%20Shop:alice%40example\.com\?secret=[A-Z2-7]{32}&issuer=Example%20Shop&algorithm=SHA1&digits=6&period=30
The app shows [0-9]{6} \(time 1700000000\)\.
Added totp-1 "Authenticator app"; notices sent: 0\.
First method: it comes with a step-up token, valid until 1700000600\.
== Signing in with the app, 30 seconds later
Password checked\. Second factor required: yes; methods offered: totp\.
The app shows [0-9]{6} \(time 1700000030\)\.
Signed in with totp \(totp-1\); step-up token valid until 1700000630\.
Someone tries the same code again:
Password checked\. Second factor required: yes; methods offered: totp\.
Refused: replayed \(this code was already used\)\.
== Enrolling an email address
  \[mail to alice@example\.com\] Example Shop: confirm your email address
  \| Your Example Shop confirmation code is [0-9]{6}\. It expires in 10 minutes\.
Code sent to alice@example\.com; it expires at 1700000630\.
The user types the code from the mail: [0-9]{6}
  \[mail to alice@example\.com\] Example Shop: a sign-in method was added
Added email-2 "alice@example\.com"; notices sent: 1\.
== Signing in with an emailed code, a minute later
Password checked\. Second factor required: yes; methods offered: totp, email\.
  \[mail to alice@example\.com\] Example Shop: your sign-in code
  \| Your Example Shop sign-in code is [0-9]{6}\. It expires in 10 minutes\.
Code sent to a\*\*\*@example\.com \(masked at sign-in\)\.
The user types the code from the mail: [0-9]{6}
Signed in with email \(email-2\); step-up token valid until 1700000690\.
== Proving an address for security notices
  \[mail to security@alice\.example\] Example Shop: confirm your email address
  \| Your Example Shop confirmation code is [0-9]{6}\. It expires in 10 minutes\.
Code sent to security@alice\.example\.
The user types the code from the mail: [0-9]{6}
  \[security log\] \{"kind":"contact_email_changed","user":"user-42",.*\}
Notices go to security@alice\.example now; notices sent: 0\.
== The Security tab
Methods:
  totp-1 +totp +Authenticator app +last used: 1700000030
  email-2 +email +alice@example\.com +last used: 1700000090
2FA required: +yes
Compliant: +yes
Recommendations: +generate_recovery_codes
Warnings: +none
Done: every call succeeded and everything was freed\.
EOF
)

# Walk the output once, advancing through the expected lines (bash regular expressions: ERE).
mapfile -t want <<<"$expected"
i=0
while IFS= read -r line && ((i < ${#want[@]})); do
    if [[ $line =~ ^${want[i]}$ ]]; then
        i=$((i + 1))
    fi
done <"$out"
((i == ${#want[@]})) || fail "no line matching /^${want[i]}\$/ (in the expected order)"

# The emailed codes typed in are the ones the mails carried.
mailed=$(sed -n 's/^  | Your Example Shop .* code is \([0-9]\{6\}\)\..*/\1/p' "$out")
typed=$(sed -n 's/^The user types the code from the mail: //p' "$out")
[[ -n $mailed && $mailed == "$typed" ]] || fail "the codes typed in are not the mailed ones"

echo "c-host-check: OK ($(grep -c . "$out") lines of output checked)"
