// @ts-check
/**
 * The shapes the client hands to its users and takes from them (JSDoc only: `tsc` turns them
 * into the package's type declarations). The wire objects are those of docs/protocol.md.
 * @module types
 */

/**
 * The event object, identical on every transport.
 * @typedef {object} EventObject
 * @property {string} topic the topic it was published to
 * @property {number} seq its place in the topic: 1, 2, 3, … with no gaps unless a reset intervenes
 * @property {string} id the cursor that resumes right after this event
 * @property {string} event the event type
 * @property {any} data the published JSON value
 * @property {number} ts server time of publication, ms since the Unix epoch
 */

/**
 * @typedef {object} ResetTopic
 * @property {string} topic
 * @property {{at_least: number, at_most: number|null}} missed
 * @property {number} resume_seq the seq of the first event that will be delivered from the topic
 */

/**
 * History was lost before the events that follow.
 * @typedef {object} ResetObject
 * @property {'expired'|'epoch_changed'} reason
 * @property {ResetTopic[]} topics
 */

/** @typedef {'poll'|'longpoll'|'sse'|'ws'} Transport */
/** @typedef {Transport|'auto'} TransportChoice */
/** @typedef {'connecting'|'open'|'reconnecting'|'closed'} Status */
/** @typedef {'leader'|'follower'} Role */

/**
 * What `connect()` takes.
 * @typedef {object} Options
 * @property {string[]} topics the topics to follow (at least one)
 * @property {string} [url] gateway base URL; default `location.origin` (required outside a page)
 * @property {TransportChoice} [transport] default `'auto'`
 * @property {string} [cursor] where to start: a server cursor, `'now'` (default) or `'oldest'`
 * @property {number} [interval] short-poll interval in ms, default 1000
 * @property {number} [timeout] long-poll wait in seconds, default 25
 * @property {string[]} [events] event types to listen for on SSE besides `message`
 * @property {string} [token] an access token; none by default
 * @property {() => (string|Promise<string>)} [refreshToken] returns a fresh token when the current one expires
 * @property {boolean} [presence] be told when a reader of the topics joins or leaves: `presence`
 *   events with a {@link PresenceNotice} (not on short poll, and not relayed to the other tabs of
 *   a shared connection); default `false`
 * @property {boolean|string} [shared] share one connection among the tabs of this origin that
 *   connect to the same `url` with the same `transport` (and, when a string, the same name);
 *   default `false`. Where the browser lacks Web Locks or BroadcastChannel, the connection is
 *   the tab's own.
 */

/**
 * What a connection received.
 * @typedef {object} Stats
 * @property {number} requests HTTP requests and connections made to receive
 * @property {number} bytes bytes received (bodies plus estimated headers; WebSocket: frame payloads)
 * @property {number} messages events and resets delivered
 */

/**
 * @typedef {object} ErrorObject
 * @property {string} code a stable code from docs/protocol.md (or `network`, `connection_closed`, …)
 * @property {string} message
 */

/**
 * @typedef {object} StatusDetail
 * @property {Status} status
 * @property {Transport} transport
 * @property {ErrorObject} [error] the error that made it `closed` or `reconnecting`
 */

/**
 * What the gateway answers to a publish.
 * @typedef {object} Published
 * @property {string} topic
 * @property {number} seq
 * @property {string} id
 */

/**
 * The events a connection dispatches, by name.
 * @typedef {object} ConnectionEventMap
 * @property {CustomEvent<EventObject>} event an event of one of the connection's topics
 * @property {CustomEvent<ResetObject>} reset history was lost before the events that follow
 * @property {CustomEvent<StatusDetail>} status the status or the transport changed
 * @property {CustomEvent<ErrorObject>} error a protocol error the connection survives, or the one that closed it
 * @property {CustomEvent<string>} cursor the new resume position (save it to resume after a reload)
 * @property {CustomEvent<PresenceNotice>} presence a reader joined or left (with the `presence` option)
 */

/**
 * A join or leave notice: not an event (no `seq`, no `id`, never replayed).
 * @typedef {object} PresenceNotice
 * @property {'join'|'leave'} event
 * @property {string} topic
 * @property {string|null} user the reader's user; `null` when anonymous
 * @property {string} transport the reader's transport
 * @property {number} total the topic's readers after the change, on every node
 */

/**
 * A poll or long-poll answer.
 * @typedef {object} PollAnswer
 * @property {EventObject[]} [events]
 * @property {string} [cursor]
 * @property {ResetObject} [reset]
 * @property {PresenceNotice[]} [presence]
 */

export {};
