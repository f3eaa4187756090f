package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"emitop/config"
	"emitop/model"
)

// Alforse (contracts and receivables, NestJS) answers errors in two shapes, both decoded
// here: NestJS's {"statusCode","message": text | [texts] | object,"error": "Bad Request"}
// and the domain {"error":{"code","message","details"}}. Its payments are the documents
// emitop watches.
var alforseDialect = &Dialect{
	name: "alforse", baseURL: "https://api.alforse.com/api/v1",
	// The login names the tenant by its slug (docs.alforse.com, "Log in").
	keys:    append(secretKeys("email=id", "password"), config.Key{Name: "tenant"}),
	check:   alforseCheck,
	auth:    alforseAuth,
	catalog: alforseCatalog, body: alforseBody,
	document: alforseDocument, open: alforseOpen,
	noResend: func(model.Document) string {
		return "alforse offers no resend: act on the payment in Alforse itself"
	},
}

// alforseCheck requires the login's three keys: the tenant's slug, the email, the password.
func alforseCheck(settings map[string]string, creds []string) []string {
	out := requireKeys("alforse", []string{"email", "password"}, creds)
	if settings["tenant"] == "" {
		out = append(out, `missing tenant: the tenant's login slug (tenant = "acme-leasing")`)
	}
	return out
}

// alforseAuth is a login for a JWT, renewed with the refresh token.
func alforseAuth(c *Client) authenticator { return newTokens(c, alforseLogin, alforseRefresh) }

// alforseCatalog holds every business code of seed 004, with the class its HTTP status and
// meaning imply, and the seed's own meaning and fix. An empty verdict leaves it to the
// class and the method.
var alforseCatalog = map[string]model.Guidance{
	// The login's answer for a user with MFA (docs.alforse.com, "Log in"), which carries
	// no code.
	alforseMFA: {Class: model.ClassAuth, Verdict: model.VerdictReauth,
		Meaning: "This user needs MFA: Alforse asks for a second factor (a TOTP or an emailed code) that emitop cannot give.",
		Action:  "Use a service user without MFA for this account, then refresh the account (emitop logs in again only when asked)."},

	// The login's 400 when it asks for human verification (a Turnstile token), which the
	// docs' FAQ says is on in production and seed 004 lists among the auth errors.
	alforseHuman: {Class: model.ClassAuth, Verdict: model.VerdictEscalate,
		Meaning: "Alforse asks this login for human verification (a Turnstile token from a browser), which emitop cannot give.",
		Action:  "Ask Alforse or the tenant's administrator for API access that does not ask for human verification, then refresh the account (emitop logs in again only when asked)."},

	// Plan and quota: 403, the tenant is not entitled.
	"PLAN_CONTRACT_LIMIT_EXCEEDED": {Class: model.ClassPlan,
		Meaning: "Creating or importing contracts would exceed the plan's contract limit.",
		Action:  "Archive or delete unused contracts where appropriate, or upgrade the plan."},
	"PLAN_SEAT_LIMIT_EXCEEDED": {Class: model.ClassPlan,
		Meaning: "Adding a member or invitation would exceed the plan's seat limit.",
		Action:  "Remove inactive invitations or members, or upgrade the plan."},
	"PLAN_STORAGE_LIMIT_EXCEEDED": {Class: model.ClassPlan,
		Meaning: "Uploading the file would exceed the plan's storage limit.",
		Action:  "Delete unused files or upgrade the storage entitlement."},
	"PLAN_FEATURE_NOT_ENABLED": {Class: model.ClassPlan,
		Meaning: "The endpoint needs a feature the tenant's plan does not enable.",
		Action:  "Upgrade the plan, or stop using the feature from this client."},
	"PLAN_SUBSCRIPTION_REQUIRED": {Class: model.ClassPlan,
		Meaning: "The tenant has no active subscription record.",
		Action:  "Contact Alforse support or the tenant administrator."},
	"PLAN_SUBSCRIPTION_INACTIVE": {Class: model.ClassPlan,
		Meaning: "The subscription exists but is neither active nor trialing.",
		Action:  "Have the tenant administrator reactivate or update the subscription."},
	"PLAN_NOT_AVAILABLE": {Class: model.ClassPlan,
		Meaning: "The subscription refers to a plan that is inactive or unavailable.",
		Action:  "Contact Alforse support or the tenant administrator."},

	// Files and uploads: 400, or 404 for a missing file resource.
	"FILE_NAME_INVALID": {Class: model.ClassValidation,
		Meaning: "The file name is empty or too long.",
		Action:  "Use a non-empty file name under the allowed length."},
	"FILE_SIZE_EMPTY": {Class: model.ClassValidation,
		Meaning: "The file size is zero or not a positive integer.",
		Action:  "Upload a non-empty file and send its exact size in bytes."},
	"FILE_TOO_LARGE": {Class: model.ClassValidation,
		Meaning: "The file exceeds the size allowed for its kind: 20 MB for contract, invoice, proof and receipt-proof files, 10 MB for imports.",
		Action:  "Compress or split the file."},
	"FILE_CONTENT_TYPE_NOT_ALLOWED": {Class: model.ClassValidation,
		Meaning: "The file's MIME type is not allowed for its kind.",
		Action:  "Use an accepted type for the kind: PDF, PNG, JPEG, CSV, TSV, TXT, XLS or XLSX."},
	"FILE_EXTENSION_NOT_ALLOWED": {Class: model.ClassValidation,
		Meaning: "The file's extension is not allowed for its kind.",
		Action:  "Rename or export the file to an allowed extension."},
	"FILE_KIND_NOT_ALLOWED": {Class: model.ClassValidation,
		Meaning: "The file kind requested is not supported.",
		Action:  "Use one of contract, invoice, proof, receipt-proof or import."},
	"FILE_REF_INVALID": {Class: model.ClassValidation,
		Meaning: "A stored file reference is missing or malformed.",
		Action:  "Use a file returned by the file upload flow."},
	"FILE_KIND_MISMATCH": {Class: model.ClassValidation,
		Meaning: "The file's kind does not match the operation (a contract file for OCR, an invoice file for invoice evidence).",
		Action:  "Use a file of the kind the operation expects."},
	"FILE_SCAN_NOT_CLEAN": {Class: model.ClassValidation,
		Meaning: "The file's malware scan is pending, failed, was skipped where clean scans are required, or found it unclean.",
		Action:  "Wait for a clean scan, or upload a safe replacement."},
	"FILE_SCAN_REQUEST_FAILED": {Class: model.ClassUpstream,
		Meaning: "The request to the external file scanner failed.",
		Action:  "Retry once the scanner is available again; check a write's state before repeating it."},
	"FILE_BINDING_CONTEXT_MISMATCH": {Class: model.ClassValidation,
		Meaning: "The file is being attached to a payment or contract it does not belong to.",
		Action:  "Upload or select a file in the right payment or contract."},
	"UPLOAD_OBJECT_KEY_MISMATCH": {Class: model.ClassValidation,
		Meaning: "The uploaded object key does not match the upload intent.",
		Action:  "Use the exact object key from the presigned upload response."},
	"UPLOAD_OBJECT_NOT_FOUND": {Class: model.ClassNotFound,
		Meaning: "The upload cannot be found in object storage.",
		Action:  "Upload again with the presigned URL before confirming."},
	"UPLOAD_OBJECT_SIZE_MISMATCH": {Class: model.ClassValidation,
		Meaning: "The uploaded object's size differs from the upload intent.",
		Action:  "Upload again exactly the file the intent describes."},
	"UPLOAD_OBJECT_TYPE_MISMATCH": {Class: model.ClassValidation,
		Meaning: "The uploaded content type differs from the upload intent.",
		Action:  "Upload with the exact content type of the intent."},
	"UPLOAD_OBJECT_CHECKSUM_MISMATCH": {Class: model.ClassValidation,
		Meaning: "The uploaded object's checksum differs from the upload intent.",
		Action:  "Upload the file again and confirm with the correct checksum."},
	"UPLOAD_TOKEN_INVALID": {Class: model.ClassValidation,
		Meaning: "The upload confirmation token is malformed or does not match the intent.",
		Action:  "Start a new presigned upload."},
	"UPLOAD_TOKEN_EXPIRED": {Class: model.ClassValidation,
		Meaning: "The upload confirmation token expired.",
		Action:  "Start a new presigned upload."},
	"UPLOAD_METADATA_MISMATCH": {Class: model.ClassValidation,
		Meaning: "The confirmation's metadata does not match the presigned upload intent.",
		Action:  "Confirm with the original file name, size, type, checksum and object key."},

	// Money and invoices: 400.
	"AMOUNT_REQUIRED": {Class: model.ClassValidation,
		Meaning: "A required money field is missing.",
		Action:  "Provide the amount field."},
	"AMOUNT_INVALID": {Class: model.ClassValidation,
		Meaning: "The amount is not a finite plain decimal number.",
		Action:  "Send a decimal string or a safe JSON number."},
	"AMOUNT_UNSAFE_NUMBER": {Class: model.ClassValidation,
		Meaning: "The amount is too large to send safely as a JSON number.",
		Action:  "Send the amount as a decimal string."},
	"AMOUNT_OUT_OF_RANGE": {Class: model.ClassValidation,
		Meaning: "The amount is negative, zero where zero is not allowed, or above the allowed target.",
		Action:  "Bring the amount into the permitted range."},
	"AMOUNT_SCALE_INVALID": {Class: model.ClassValidation,
		Meaning: "The amount has more decimal places than allowed.",
		Action:  "Round to the supported scale, usually two decimals."},
	"UNSUPPORTED_CURRENCY": {Class: model.ClassValidation,
		Meaning: "The currency code is not supported.",
		Action:  "Use an ISO currency code the tenant supports."},
	"INVOICE_AMOUNT_EXCEEDS_TARGET": {Class: model.ClassValidation,
		Meaning: "The cumulative invoiced amount would exceed the contract, payment or receivable target.",
		Action:  "Lower the invoice amount, or correct the invoices already recorded."},

	// Contracts and workflow: 422 unless noted.
	"OWNER_SCOPE_RESTRICTED": {Class: model.ClassPermission, Verdict: model.VerdictFix,
		Meaning: "A sales-scoped user tried to create or own a contract for another owner.",
		Action:  "Make the signed-in user the owner, or ask a role with a broader scope to make the change."},
	"ASSIGNEE_NOT_ACTIVE_TENANT_MEMBER": {Class: model.ClassValidation,
		Meaning: "The owner or assignee is not an active member of the tenant.",
		Action:  "Select an active member."},
	"SUBJECT_NOT_FOUND": {Class: model.ClassNotFound,
		Meaning: "The subject company is missing or outside the caller's scope.",
		Action:  "Select a subject company the caller can see."},
	"CONTRACT_TYPE_NOT_CONFIGURED": {Class: model.ClassValidation,
		Meaning: "The contract type code is not configured.",
		Action:  "Use an enabled contract type, or configure it first."},
	"LIFECYCLE_STAGE_NOT_CONFIGURED": {Class: model.ClassValidation,
		Meaning: "The lifecycle stage requested is not configured for the selected template.",
		Action:  "Use a valid stage of the lifecycle template."},
	"LIFECYCLE_TEMPLATE_NOT_AVAILABLE": {Class: model.ClassValidation,
		Meaning: "The lifecycle template requested is missing or disabled.",
		Action:  "Use a published lifecycle template."},
	"DYNAMIC_FIELDS_INVALID": {Class: model.ClassValidation,
		Meaning: "dynamicFields is not an object.",
		Action:  "Send an object keyed by dynamic field key."},
	"DYNAMIC_FIELD_UNKNOWN": {Class: model.ClassValidation,
		Meaning: "A dynamic field key is not defined.",
		Action:  "Remove the field, or create its definition."},
	"DYNAMIC_FIELD_REQUIRED": {Class: model.ClassValidation,
		Meaning: "A required dynamic field is empty.",
		Action:  "Provide a value for the required field."},
	"DYNAMIC_FIELD_TYPE_INVALID": {Class: model.ClassValidation,
		Meaning: "A dynamic field's value has the wrong type.",
		Action:  "Match the field's type: text, number, money, date, select, multi-select, boolean, URL, member or attachment."},
	"DYNAMIC_FIELD_OPTION_INVALID": {Class: model.ClassValidation,
		Meaning: "A select or multi-select value is not among the allowed options.",
		Action:  "Use one of the configured options."},
	"CONTRACT_PDF_REQUIRED": {Class: model.ClassValidation,
		Meaning: "The tenant's rules require a contract PDF before saving.",
		Action:  "Attach a contract PDF through the file upload flow."},
	"REQUIRED_FIELDS_MISSING": {Class: model.ClassValidation,
		Meaning: "The tenant's rules require more contract fields.",
		Action:  "Provide every field listed in details.fields."},
	"CONTRACT_CORE_FIELDS_LOCKED": {Class: model.ClassConflict,
		Meaning: "A workflow lock prevents direct edits to the contract's core fields.",
		Action:  "Use a workflow transition, or ask an administrator to unlock the contract."},
	"WORKFLOW_FIELDS_REQUIRE_TRANSITION": {Class: model.ClassValidation,
		Meaning: "The request patched workflow or lifecycle fields directly (400).",
		Action:  "Use the workflow transition endpoint."},
	"WORKFLOW_REQUIRED_FIELDS_MISSING": {Class: model.ClassValidation,
		Meaning: "The transition requires fields that are still empty.",
		Action:  "Fill the required fields before the transition."},
	"WORKFLOW_REQUIRED_EVIDENCE_MISSING": {Class: model.ClassValidation,
		Meaning: "The transition requires evidence files that are missing.",
		Action:  "Attach the required evidence before the transition."},
	"WORKFLOW_AI_REVIEW_PENDING": {Class: model.ClassConflict,
		Meaning: "The transition requires the AI review to finish or pass.",
		Action:  "Complete the review requirement before the transition."},
	"WORKFLOW_FULFILLMENT_OPEN": {Class: model.ClassConflict,
		Meaning: "The transition requires the fulfillment tasks to be closed.",
		Action:  "Complete or resolve the open fulfillment tasks."},
	"WORKFLOW_RECEIVABLES_OPEN": {Class: model.ClassConflict,
		Meaning: "The transition requires the receivables to be closed.",
		Action:  "Settle or resolve the open receivables."},
	"WORKFLOW_NOTE_REQUIRED": {Class: model.ClassValidation,
		Meaning: "The transition requires a note.",
		Action:  "Include a transition note."},
}

// alforseTexts places the authentication and security messages of seed 004, which carry no
// code, where the HTTP status alone would mislead: credentials or access that only an
// administrator can restore, and SSO not enabled for the tenant; and a 409 on an invoice
// number, which after a write that timed out most likely means that write landed. First
// match wins.
var alforseTexts = []phraseClass{
	{401, "invalid credentials", model.ClassAuth, model.VerdictEscalate},
	{401, "membership is no longer active", model.ClassAuth, model.VerdictEscalate},
	{401, "role is no longer active", model.ClassAuth, model.VerdictEscalate},
	{401, "user is not active", model.ClassAuth, model.VerdictEscalate},
	{400, "sso is not configured", model.ClassPermission, model.VerdictEscalate},
	{400, "unsupported sso", model.ClassPermission, model.VerdictEscalate},
	{409, "invoice number", model.ClassDuplicate, model.VerdictReconcile},
	{409, "invoiceno", model.ClassDuplicate, model.VerdictReconcile},
}

// alforseMFA is the catalog key of the login's MFA answer; alforseHuman that of a 400
// asking for human verification.
const (
	alforseMFA   = "MFA_REQUIRED"
	alforseHuman = "HUMAN_VERIFICATION"
)

// alforseEnvelope is the top-level keys of an Alforse error body that carry the problem
// (statusCode repeats the HTTP status).
type alforseEnvelope struct {
	Message     json.RawMessage `json:"message"` // a text, a list of texts, or an object
	Error       json.RawMessage `json:"error"`   // the status text, or the domain error
	MFARequired bool            `json:"mfaRequired"`
}

// alforseError is the domain error, {"code","message","details"}.
type alforseError struct {
	Code    string          `json:"code"`
	Message json.RawMessage `json:"message"`
	Details json.RawMessage `json:"details"`
}

// alforsePayment is an Alforse payment as GET /payments lists it: what emitop needs of it.
type alforsePayment struct {
	ID                   json.RawMessage `json:"id"` // a string or a number
	Reference            string          `json:"reference"`
	InvoiceNo            string          `json:"invoiceNo"`
	Status               string          `json:"status"`
	ReconciliationStatus string          `json:"reconciliationStatus"` // pending, matched or exception
	// ReconciliationNote says why, in a person's words (docs.alforse.com, api-reference/
	// payments): the reason of an exception.
	ReconciliationNote string `json:"reconciliationNote"`
}

// alforseNoteCode finds a business code of the catalog quoted in a reconciliation note.
var alforseNoteCode = regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b`)

// classValidatorField finds the property a class-validator message starts with:
// "invoiceAmount must be a positive number", "items.0.price should not be empty",
// "property foo should not exist", "each value in tags must be a string".
var classValidatorField = regexp.MustCompile(`^(?:each value in |property |nested property )?([a-z_$][\w$]*(?:\.[\w$]+)*) (?:must|should|has|is|are|contains)\b`)

// alforseBody decodes any Alforse body; bytes that are not JSON give no finding.
func alforseBody(status int, body []byte) finding {
	var env alforseEnvelope
	if !lenientJSON(body, &env) {
		return finding{}
	}
	if env.MFARequired {
		return finding{key: alforseMFA, message: rawText(env.Message)}
	}
	if !rawPresent(env.Message) && !rawPresent(env.Error) {
		// A payment (PATCH's answer, a list's item): its reconciliation exception, if any.
		_, f, _ := alforseDocument(body)
		return f
	}
	var f finding
	var domain alforseError
	if lenientJSON(env.Error, &domain) && (domain.Code != "" || len(domain.Message) > 0) {
		f = alforseDomain(domain)
	} else {
		f = alforseMessage(env.Message)
	}
	if status == http.StatusBadRequest && f.code == "" && strings.Contains(strings.ToLower(f.message), "human verification") {
		f.key = alforseHuman
	}
	if f.class == "" {
		f.class, f.verdict = classByPhrase(alforseTexts, status, f.message)
	}
	return f
}

// alforseMessage reads NestJS's message: a text, class-validator's list of texts (each
// naming its property), or an object in the domain error's shape.
func alforseMessage(raw json.RawMessage) finding {
	if s := rawText(raw); s != "" {
		return finding{message: s}
	}
	var domain alforseError
	if pairs := jsonPairs(raw); pairs != nil {
		if lenientJSON(raw, &domain) && (domain.Code != "" || len(domain.Message) > 0) {
			return alforseDomain(domain)
		}
		return finding{message: compactText(raw)}
	}
	var f finding
	msgs := rawTexts(raw)
	for _, m := range msgs {
		if sub := classValidatorField.FindStringSubmatch(m); sub != nil {
			f.fields = addField(f.fields, sub[1])
		}
	}
	f.message = strings.Join(msgs, "\n")
	return f
}

// alforseDomain reads the domain error: its code, its message (with the details under it)
// and the fields its details name (details.fields, details.field).
func alforseDomain(e alforseError) finding {
	f := finding{code: e.Code, message: rawText(e.Message)}
	if f.message == "" {
		f.message = strings.Join(rawTexts(e.Message), "\n")
	}
	var details struct {
		Fields []string `json:"fields"`
		Field  string   `json:"field"`
	}
	if jsonPairs(e.Details) != nil && lenientJSON(e.Details, &details) {
		for _, field := range append(details.Fields, details.Field) {
			f.fields = addField(f.fields, field)
		}
		if d := compactText(e.Details); d != "{}" {
			f.message = joinLines(f.message, "details: "+d)
		}
	}
	return f
}

// alforseDocument reads one Alforse payment as a document. ID is the payment's id; Number
// is its invoiceNo, or its own reference while it has no invoice. A reconciliationStatus of
// "exception" is rejected, and the finding carries its reconciliationNote (and a catalog
// code the note quotes); a
// cancelled or void payment is cancelled; a payment without an invoiceNo awaits its
// invoice (pending); any other is accepted. The finding is empty when the payment has
// nothing to report. ok is false when raw holds no payment (no id). ID is kept exactly;
// Number is sanitized: it reaches screens, logs and error texts.
func alforseDocument(raw []byte) (doc model.Document, f finding, ok bool) {
	var p alforsePayment
	if !lenientJSON(raw, &p) {
		return model.Document{}, finding{}, false
	}
	id := rawText(p.ID)
	if id == "" {
		return model.Document{}, finding{}, false
	}
	number := p.InvoiceNo
	if number == "" {
		number = p.Reference
	}
	doc = model.Document{Provider: "alforse", ID: id, Number: model.Line(number, 80)}
	switch {
	case strings.EqualFold(p.ReconciliationStatus, "exception"):
		doc.Status = model.StatusRejected
		f = finding{message: p.ReconciliationNote, class: model.ClassRejected}
		for _, c := range alforseNoteCode.FindAllString(p.ReconciliationNote, maxEntries) {
			if _, known := alforseCatalog[c]; known {
				f.code = c
				break
			}
		}
	case strings.EqualFold(p.Status, "cancelled") || strings.EqualFold(p.Status, "canceled") || strings.EqualFold(p.Status, "void"):
		doc.Status = model.StatusCancelled
	case p.InvoiceNo == "":
		doc.Status = model.StatusPending
	default:
		doc.Status = model.StatusAccepted
	}
	return doc, f, true
}

// alforsePage is the most payments Alforse lists at once.
const alforsePage = 200

// alforseOpen lists the payments awaiting their invoice (tab invoice), then those whose
// reconciliation failed (tab reconcile). Alforse documents no read of one payment.
func alforseOpen(c *Client) []pages {
	path := c.Path("payments", "/payments")
	tab := func(name string) pages {
		return pages{first: 1, path: func(n int) string {
			return fmt.Sprintf("%s?tab=%s&page=%d&pageSize=%d", path, name, n, alforsePage)
		}, split: envelope("total", alforsePage)}
	}
	return []pages{tab("reconcile"), tab("invoice")}
}

// alforseAnswer is Alforse's login answer, flat or wrapped in "data": a TokenPair, or,
// for a user with MFA, {mfaRequired: true, ...} (docs.alforse.com, api-reference/
// authentication, "Log in").
type alforseAnswer struct {
	AccessToken  string          `json:"accessToken"`
	RefreshToken string          `json:"refreshToken"`
	ExpiresIn    json.RawMessage `json:"expiresIn"`
	MFARequired  bool            `json:"mfaRequired"`
	Data         *alforseAnswer  `json:"data"`
}

func (a alforseAnswer) grant(c *Client, step string) (grant, error) {
	if a.AccessToken == "" && a.Data != nil {
		a = *a.Data
	}
	if a.AccessToken == "" {
		return grant{}, fmt.Errorf("%s: %s: the answer has no accessToken", c.account.Name, step)
	}
	return grant{access: a.AccessToken, refresh: a.RefreshToken, ttl: lifetime(a.ExpiresIn)}, nil
}

// alforseLogin is POST /auth/login {tenantSlug, email, password}. A user with MFA is
// answered {mfaRequired: true}, and a login asked for human verification 400: emitop can
// give neither, and logging in again cannot help, so the refusal waits for the operator
// (AuthError.NeedsPerson).
func alforseLogin(ctx context.Context, c *Client) (grant, error) {
	creds := c.account.Credentials
	body, err := json.Marshal(map[string]string{"tenantSlug": c.account.Setting("tenant"), "email": creds.Get("email"), "password": creds.Get("password")})
	if err != nil {
		return grant{}, err
	}
	var a alforseAnswer
	res, err := tokenCall(ctx, c, "login", c.Path("login", "/auth/login"), body, "application/json", nil, &a)
	var refused *AuthError
	if errors.As(err, &refused) && alforseBody(refused.Response.Status, refused.Response.Body).key == alforseHuman {
		refused.NeedsPerson = true // no repetition passes a human verification
	}
	if err != nil {
		return grant{}, err
	}
	if a.MFARequired || a.Data != nil && a.Data.MFARequired {
		return grant{}, &AuthError{Account: c.account.Name, Step: "login", Response: res, NeedsPerson: true}
	}
	return a.grant(c, "login")
}

// alforseRefresh is POST /auth/refresh {refreshToken} (docs.alforse.com, api-reference/
// authentication).
func alforseRefresh(ctx context.Context, c *Client, refresh string) (grant, error) {
	body, err := json.Marshal(map[string]string{"refreshToken": refresh})
	if err != nil {
		return grant{}, err
	}
	var a alforseAnswer
	if _, err := tokenCall(ctx, c, "refresh", c.Path("refresh", "/auth/refresh"), body, "application/json", nil, &a); err != nil {
		return grant{}, err
	}
	return a.grant(c, "refresh")
}
