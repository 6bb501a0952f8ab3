// /signin: the password; then either signed in, or on to /signin/2fa for the second factor.
import { emailPasswordForm } from "./common.js";

emailPasswordForm("signin", "/api/signin");
