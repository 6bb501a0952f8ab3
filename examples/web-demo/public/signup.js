// /signup: creates the account and signs it in.
import { emailPasswordForm } from "./common.js";

emailPasswordForm("signup", "/api/signup");
