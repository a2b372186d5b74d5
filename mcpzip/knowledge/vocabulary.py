"""The built-in vocabulary of search: what words mean in requests about software work.

This is data, read by :mod:`.search` on the first search; review and extend
it on its own.  It holds general knowledge of software work — verbs and
objects of files, shells, version control, chat, mail, calendars, issues,
databases, browsers, maps — never the words of individual queries.

Every table is plain text, one entry per line:

* ``PHRASES``: ``words = word``; ``*`` stands for up to three other words.
* ``SHORTHAND``: ``words = words``: a command, abbreviation or idiom (each
  spelling on the left, matched exactly as typed) and the plain words it
  stands for (read in queries only; the word itself stays).
* ``SYNONYMS``: words on a line mean the same thing (symmetric).
* ``RELATED``: the first word of a line suggests the others (one way).
* ``ACTIONS``: verbs; a query with none of them is a look-up.
* ``IMPERATIVES``: ``verb: nouns`` that, first in a request, stand for the verb.
* ``LOOKUPS``: name words of tools that look things up.
"""

STOPWORDS = frozenset(
    """a an the and or nor of to in on for from with by at as is are was were be been being this that these
    those it its it's i i'm me my mine we our ours you your yours he she his her they them their there here
    can could would should shall will may might must please want wanted need needs do does did doing
    some any so such than then too very just also only into onto about via using use like what which
    whom whose why how if else whether not no yes let lets let's am has have had having one ones
    thing things stuff something anything everything someone anyone everybody way kind sort bit lot lots bunch
    e.g i.e etc""".split()
)

# Forms a suffix stripper cannot reach, and words it would wrongly cut.
IRREGULAR = {
    "sent": "send", "made": "make", "got": "get", "gotten": "get", "found": "find", "wrote": "write",
    "written": "write", "ran": "run", "took": "take", "taken": "take", "gave": "give", "given": "give",
    "began": "begin", "begun": "begin", "chose": "choose", "chosen": "choose", "drew": "draw", "drawn": "draw",
    "did": "do", "went": "go", "gone": "go", "saw": "see", "seen": "see", "kept": "keep",
    "left": "leave", "lost": "lose", "paid": "pay", "said": "say", "sold": "sell", "told": "tell",
    "thought": "think", "bought": "buy", "brought": "bring", "built": "build", "children": "child",
    "people": "person", "men": "man", "women": "woman", "data": "data", "media": "media", "indices": "index",
    "analyses": "analysis", "statuses": "status", "aliases": "alias", "caches": "cache", "apis": "api",
    "uris": "uri", "menus": "menu", "canvas": "canvas", "atlas": "atlas", "chaos": "chaos", "kudos": "kudos",
    "macos": "macos", "ios": "ios", "alias": "alias", "bias": "bias",
}

#
# Phrases that mean one thing.  In a query a phrase is replaced by its word
# ("*" stands for up to three other words: "let the team know"); in a tool's
# text the word is added beside the phrase's own words.
PHRASES = """
get rid of = delete
set up = create
set * up = create
sign up = register
look up = search
look * up = search
look for = search
search for = search
check off = complete
check * off = complete
cross off = complete
tick off = complete
sign in = login
log in = login
sign out = logout
log out = logout
pull request = pullrequest
merge request = mergerequest
to do = todo
pay back = refund
money back = refund
turn off = disable
turn * off = disable
switch off = disable
turn on = enable
turn * on = enable
switch on = enable
shut down = stop
shut * down = stop
clean up = cleanup
clean * up = cleanup
back up = backup
fill in = fill
fill out = fill
fill * in = fill
fill * out = fill
go back = back
write down = note
write * down = note
keep track = track
find out = search
pull * out = extract
let * know = notify
how many = count
how much = amount
how far = distance
free busy = freebusy
knowledge base = knowledgebase
key value = keyvalue
web page = webpage
web site = website
screen shot = screenshot
e mail = email
spin up = create
spin * up = create
catch up = history
catch * up = history
hear about = watch
keep * posted = watch
keep * quiet = mute
from now on = rule
stop getting = filter
don t forget = remind
don t let * forget = remind
how big = size
how large = size
on my plate = todo
are you sure = confirm
select * from = sql
insert into = sql
"""

# Commands, abbreviations and idioms of software work, and the plain words
# they stand for: shell and git commands, chat and ops jargon.  Read in
# queries only; the word itself is kept after its meaning.
SHORTHAND = """
ls = list directory
dir = list directory
mkdir = create directory
rmdir = delete directory
rm = delete file
cp = copy file
mv = move file
cat = read file
du = directory size
grep = search text
sed = replace text edit
curl = fetch url
wget = download url
chmod = permission
tar = archive
ps = process list
psql = postgres query
mongosh = mongodb query
blame = commit history
unstage = reset staged
gh = github
lgtm = approve review
squash = merge
rebase = update branch
upsert = create update
ddl = schema table
dml = write query
serp = web search
sitemap = website map url
sev sevs = incident
a11y = accessibility
eta = travel time distance
rag = retrieval knowledgebase
xhr = network request
ajax = network request
ttl = expiration
crd = api resource
fyi = notify
whois = user profile
unreact = remove reaction
"""

# Words people use for the same action or object.  Each line is one group of
# synonyms; a word may sit in several groups.  Written for tool catalogs in
# general (files, code hosting, chat, mail, calendars, tasks, databases,
# clusters, monitoring, payments, maps, browsers, web search), not for one set
# of servers or queries.
SYNONYMS = """
create make new add generate build setup compose start open register insert spawn produce establish
delete remove erase wipe destroy drop purge clear discard trash del rm unset rid expunge nuke
update edit modify change patch alter adjust amend revise tweak set bump
rename retitle
get fetch retrieve read obtain grab pull load open
show display view see print output render
list enumerate browse
search find lookup query look locate seek discover filter grep
many multiple bulk batch several all mass
send post message notify tell announce publish broadcast dm
reply respond answer
comment note remark annotation feedback
run execute exec invoke call trigger launch perform evaluate eval
stop cancel abort halt kill terminate interrupt
close exit quit dismiss
complete finish done resolve fulfil fulfill
uncomplete reopen
schedule plan book reschedule postpone defer
move transfer relocate
copy clone duplicate fork replicate
upload attach import
export download dump save
install deploy provision
upgrade update
uninstall remove delete
scale resize replica
connect login authenticate auth signin
disconnect logout signout
count number total tally
size bytes length dimension
summary abstract summarize overview tldr synopsis digest
describe explain details detail info information inspect metadata
schema structure columns column fields field layout definition
status state health condition
history log logs activity timeline journal audit
diff changes difference compare delta
label tag category
folder directory dir
file document doc
contents content body
repo repository
pullrequest pr mergerequest mr
issue ticket bug defect
task todo chore
project
user member person account teammate profile
team group squad
email mail gmail inbox
message msg chat dm
channel room
calendar agenda
event meeting appointment invite invitation standup huddle
database db
table sheet spreadsheet
row record entry
image picture photo illustration drawing pic artwork graphic
screenshot screencap capture
web internet online
website site webpage homepage
url href address
url webpage
download fetch
browser
kubernetes k8s kube kubectl
pod container
deployment rollout
release version
metric metrics stat stats statistic statistics measurement telemetry
analytics insight insights productivity performance
error exception crash failure fault
alert alarm monitor
host server machine node instance vm
customer client buyer shopper
invoice bill billing
payment charge transaction pay purchase
refund reimburse reimbursement
coupon discount promo voucher promotion
subscription recurring membership
product sku
price pricing cost fee
balance funds
dispute chargeback
place business venue shop store
location coordinates coordinate latlng
directions route navigate navigation itinerary
distance far
elevation altitude height
time clock now timezone
timezone tz utc gmt pst pdt est edt cst cdt mst mdt cet cest bst ist jst aest
paper article publication preprint
reaction emoji react heart upvote
thread conversation replies
attachment attached
draft unsent
credential token secret password
config configuration settings setting preferences
variable env environment
javascript js script
code snippet source
shell terminal command bash cli
key keypress keyboard keystroke
click press tap push hit
type enter input
select choose pick option dropdown
navigate go visit goto
back previous prior earlier
hover mouseover
drag
extract scrape parse
crawl spider
mute silence snooze suppress
unmute unsilence unsnooze
downtime maintenance
incident outage
trace tracing span
dashboard board
knowledgebase kb knowledge
memory remember memorize recall
relation relationship
observation fact
reasoning think thinking reason thought step steps
translate translation
reminder remind
due deadline
priority urgent
available availability free busy freebusy
commit checkin
merge combine
staged stage cached
app application
cite citation bibtex bibliography reference
dialog popup modal prompt confirm
quiet mute
watch follow subscribe
accessibility aria
expiration expire expiry
checkout switch
permission access allowed allow
forward tunnel
geocode geocoding
weather forecast
"""

# Weaker links, from the first word of a line to the others: words that
# often point at the same tools without meaning the same thing.
RELATED = """
show get read list
list search find
view get read
who user member person people
when date time schedule
where location place address
cancel delete remove
move reschedule update
link url relation connect
url link
plan subscription price
display get read
see get read list
put add create set insert
keep save store
remember memory knowledge
note observation comment
story comment
text message content
summarize extract content
article url webpage content
webpage url content
video media
audio media
width resize viewport size
height resize viewport size
viewport resize
money payment balance amount
charge payment
recurring subscription
ticket issue incident
bug issue error
error event issue
repo project
research paper
offline local download
local download
spreadsheet table base
cell field
document record row
flag field property
property field attribute
column field
wiki page database
workspace server guild
guild server
teammate user member
colleague user member
recent history latest activity
recently recent history activity
lately recent history activity
latest recent
today date time current
tomorrow date due
yesterday date
deadline due date
attendee attendees event
organizer event
replica scale
undo rollback revert reset
rollback rollout revert
revert reset rollback
restart rollout
yaml manifest apply
manifest apply
debug logs describe error
troubleshoot logs describe error
diagnose logs describe error
crash error logs
logs log
cpu metric host
restaurant place business local
cafe place business local
hotel place business
shop place business
store place business
nearby local place
call meeting event
monday date day
tuesday date day
wednesday date day
thursday date day
friday date day
saturday date day
sunday date day
weekend date day
morning time date
afternoon time date
evening time date
tonight time date
noon time
last recent latest history
ci status check build
pipeline status check build
passing status check
failing status check error
rule filter
automatically rule filter
auto rule filter
block filter rule
newsletter email
restore reset revert undo
rebase merge update branch
paragraph block content text
hotfix branch
bugfix branch
thesis paper
epic project
latency metric performance
vitals performance
retrieval knowledgebase search
forget delete remove
logo image
https url webpage
http url webpage
www url webpage
com website url
py file
txt file
md file
csv file
json file
yaml file
pdf file
pm time
charge invoice bill
log file
""".strip()
# Verbs: a query with none of them is a look-up ("gmail labels").
ACTIONS = """
create make new add generate build setup compose start open register insert spawn delete remove erase wipe
destroy drop purge clear discard trash rid update edit modify change patch alter adjust set bump rename
get fetch retrieve read grab pull load show display view see print list enumerate browse search find
lookup query look locate filter send post message notify tell announce publish reply respond answer
comment run execute exec invoke call trigger launch evaluate stop cancel abort kill terminate close
complete finish resolve schedule plan book reschedule postpone move transfer copy clone duplicate fork
upload attach import export download save install deploy upgrade uninstall scale resize connect login
disconnect logout count summarize describe explain inspect check diff compare merge commit checkout
click press tap type enter fill select choose pick navigate go visit hover drag extract scrape crawl
mute unmute translate remind convert apply analyze analyse refund pay charge invite share assign
archive restore mark react star watch unwatch subscribe unsubscribe push approve reject review leave
accept decline give take keep put bring ask tell try help use write store record track buy sell order
return sign join follow unfollow like forward draw wipe erase bump undo redo revert reset restart reboot
preview lock unlock enable disable rotate renew verify validate test measure sync backup migrate tag
label assign reassign mention calculate estimate edit rename book note figure make set
"""
# Nouns that, first in a request, are its verb: "comment on the PR" asks to
# add a comment, "email the team" to send one.
IMPERATIVES = """
create: comment note tag label bookmark star pin link bill invoice draft log file report remind schedule book react flag
send: message email mail text dm ping invite
"""
# Name words of tools that look things up rather than change them.
LOOKUPS = "list get search find read show view fetch retrieve query describe browse lookup"
