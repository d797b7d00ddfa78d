//! Every English string the console and the portal show, in one place, so
//! that they can be translated later. Templates name these constants;
//! messages from the service and the API's problem details are shown as
//! they are (they never carry personal data).

pub const PRODUCT: &str = "Steward";
pub const SKIP: &str = "Skip to content";
pub const NAV_LABEL: &str = "Main";

// Sign-in and account
pub const SIGN_IN: &str = "Sign in";
pub const SIGN_OUT: &str = "Sign out";
pub const USERNAME: &str = "Username";
pub const PASSWORD: &str = "Password";
pub const CODE: &str = "One-time code (authenticator app or recovery code)";
pub const CODE_HINT: &str = "Leave empty if you have not set up a second factor yet.";
pub const WRONG_LOGIN: &str = "The username, password or one-time code is wrong.";
pub const SECURITY: &str = "Security";
pub const MFA: &str = "Second factor (TOTP)";
pub const MFA_ON: &str = "Your second factor is on.";
pub const MFA_OFF: &str = "You have no second factor yet. Roles that see personal data need one.";
pub const MFA_REQUIRED: &str = "Your role needs a second factor before it may see personal data. Set one up now.";
pub const MFA_ENROL: &str = "Set up an authenticator app";
pub const MFA_SCAN: &str = "Scan this code with your authenticator app, or type the secret below into it. Then enter the six-digit code it shows.";
pub const MFA_SECRET: &str = "Secret";
pub const MFA_CONFIRM: &str = "Confirm";
pub const MFA_DONE: &str =
    "Your second factor is on. Keep these recovery codes somewhere safe: each works once, and they are shown only now.";
pub const MFA_AGAIN: &str = "Sign in again with a code from your app to get full access.";
pub const RECOVERY_LEFT: &str = "Recovery codes left";
pub const SESSIONS: &str = "Sessions";
pub const TOKENS: &str = "API tokens";
pub const REVOKE: &str = "Revoke";
pub const THIS_SESSION: &str = "this session";
pub const SIGNED_IN_AS: &str = "Signed in as";

// Purpose selector
pub const PURPOSE: &str = "Purpose";
pub const USE_PURPOSE: &str = "Use";
pub const PURPOSE_FIELDS: &str = "Contact fields this purpose allows";
pub const NO_PURPOSE: &str = "Your role acts for no purpose that reads personal data.";

// Navigation
pub const HOME: &str = "Home";
pub const CONTACTS: &str = "Contacts";
pub const ORGANIZATIONS: &str = "Organisations";
pub const DEALS: &str = "Deals";
pub const REQUESTS: &str = "Requests";
pub const CONSENT: &str = "Consent & notices";
pub const INCIDENTS: &str = "Breaches";
pub const RETENTION: &str = "Retention";
pub const AUDIT: &str = "Audit";
pub const ART30: &str = "Art. 30 record";
pub const USERS: &str = "Users";
pub const SETTINGS: &str = "Settings";

// Contacts
pub const SEARCH: &str = "Search";
pub const SEARCH_LABEL: &str = "E-mail, telephone or a word of a name";
pub const NEW_CONTACT: &str = "New contact";
pub const EDIT: &str = "Edit";
pub const SAVE: &str = "Save";
pub const CREATE: &str = "Create";
pub const NEXT_PAGE: &str = "Next page";
pub const NO_CONTACTS: &str = "No contacts.";
pub const COLLECTED_FOR: &str = "Collected for";
pub const COLLECTED_FOR_HINT: &str = "Only fields one of these purposes needs may be stored (data minimisation).";
pub const FIX_ERRORS: &str = "Please correct the marked fields.";
pub const CREATED: &str = "Contact created.";
pub const SAVED: &str = "Changes saved.";
pub const INTERACTIONS: &str = "Interactions";
pub const ADD_INTERACTION: &str = "Add interaction";
pub const KIND: &str = "Kind";
pub const SUMMARY: &str = "Summary";
pub const CONSENTS: &str = "Consent per purpose";
pub const LEGAL_HOLDS: &str = "Legal holds";
pub const ACCESS_LOG: &str = "Who accessed this contact";
pub const RESTRICTED: &str = "Processing of this contact's data is restricted (GDPR Art. 18): only the privacy officer may use it, for compliance.";
pub const EXPORT_CSV: &str = "Export CSV";
pub const IMPORT_CSV: &str = "Import CSV";
pub const NOT_SHOWN: &str = "Not available for this purpose.";

// Privacy office
pub const DUE: &str = "Due";
pub const OVERDUE: &str = "overdue";
pub const DUE_SOON: &str = "due soon";
pub const ON_TIME: &str = "on time";
pub const VERIFY: &str = "Verify identity";
pub const EXTEND: &str = "Extend deadline";
pub const REFUSE: &str = "Refuse";
pub const FULFIL: &str = "Fulfil";
pub const REASON: &str = "Reason";
pub const CERTIFICATE: &str = "Certificate of completion";
pub const EXPORT: &str = "Export";
pub const NO_REQUESTS: &str = "No requests.";
pub const VERIFY_LOG: &str = "Verify the log";
pub const TREE_HEAD: &str = "Signed tree head";
pub const FILTER: &str = "Filter";

// Portal
pub const PORTAL: &str = "Your privacy";
pub const PORTAL_INTRO: &str = "Here you can ask what we hold about you, have it corrected or erased, restrict or object to its use, opt out of its sale, and manage your consent — without an account.";
pub const MAKE_REQUEST: &str = "Make a request";
pub const YOUR_EMAIL: &str = "Your e-mail address";
pub const REQUEST_KIND: &str = "What would you like us to do?";
pub const REGIME: &str = "Which law applies to you?";
pub const SEND: &str = "Send";
pub const CHECK_MAIL: &str = "Thank you. If we hold data under this address, or to confirm your request, we have sent a one-time code to it. Enter it below.";
pub const VERIFY_CODE: &str = "Confirm with the code from your e-mail";
pub const THE_CODE: &str = "Code";
pub const VERIFIED: &str = "Your request is confirmed. Keep its reference to check its status.";
pub const BAD_CODE: &str = "This code is wrong, used or expired.";
pub const STATUS: &str = "Check a request";
pub const REFERENCE: &str = "Request reference";
pub const NO_SUCH_REQUEST: &str = "We found no request with this reference for this address.";
pub const DOWNLOAD: &str = "Download your data";
pub const DOWNLOAD_HINT: &str =
    "Once your access or portability request is fulfilled we e-mail you a download code. It works for a limited time.";
pub const MANAGE_CONSENT: &str = "Manage your consent";
pub const GRANT: &str = "I agree";
pub const WITHDRAW: &str = "I withdraw my consent";
pub const CONSENT_PENDING: &str =
    "Thank you. To confirm, use the code we have sent to this address (if it is one we hold).";
pub const CONSENT_WITHDRAWN: &str =
    "Your withdrawal is recorded (if this is an address we hold). It takes effect at once.";
pub const CONSENT_CONFIRMED: &str = "Your consent is confirmed.";
pub const GPC_APPLIED: &str = "Your browser's Global Privacy Control signal was applied: we treat it as an opt-out of the sale and sharing of your personal data.";
pub const NOTICE: &str = "Privacy notice";
pub const NOTICE_HISTORY: &str = "Earlier versions";
pub const NO_NOTICE: &str = "No privacy notice has been published yet.";
pub const UNDER_NOTICE: &str = "Under privacy notice version";

// CSV import
pub const IMPORT_TITLE: &str = "Import contacts from CSV";
pub const IMPORT_HELP: &str = "The first line must be a header naming contact fields of the data inventory (for example given_name,family_name,email), and optionally a purposes column (purposes separated by semicolons). Every row goes through the same checks as a contact created by hand: fields no purpose needs are refused, duplicates are refused, and each row's outcome is reported by line number.";
pub const IMPORT_FILE: &str = "CSV file";
pub const IMPORT_PURPOSES: &str = "Purposes for rows without a purposes column";
pub const IMPORT_START: &str = "Import";
pub const IMPORT_RUNNING: &str = "Importing…";
pub const IMPORT_DONE: &str = "Import finished";
pub const IMPORT_LINE: &str = "Line";
pub const IMPORT_REASON: &str = "Why it was refused";
pub const IMPORT_NO_FILE: &str = "choose a CSV file to import";
pub const IMPORT_NOT_ALLOWED: &str = "your role may not create contacts";
pub const IMPORT_GONE: &str = "import not found (results are kept for an hour)";
pub const IMPORT_MORE: &str = "Import another file";

// Security self-audit
pub const SECURITY_REPORT: &str = "Security self-audit";
pub const COMPLIANCE_REPORT: &str = "Compliance report";
