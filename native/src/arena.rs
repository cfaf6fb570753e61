//! html5ever's tree, built into one flat arena: nodes in a `Vec`, linked by indices (parent,
//! first and last child, previous and next sibling). No `Rc` tree and nothing recursive: a page
//! nested 100,000 deep is built, walked and dropped in loops, without the stack growing.
use std::borrow::Cow;
use std::cell::RefCell;

use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{
    ElemName, ElementFlags, NodeOrText, QuirksMode, TreeBuilderOpts, TreeSink,
};
use html5ever::{parse_document, Attribute, LocalName, Namespace, ParseOpts, QualName};

/// "No node" in a link field.
pub const NONE: u32 = u32::MAX;

pub struct Element {
    pub name: QualName,
    pub attrs: Vec<Attribute>,
    /// The document fragment holding a `<template>`'s content (not in the tree: its links
    /// are not links).
    pub template: u32,
    pub annotation_html: bool,
}

pub enum Data {
    Document,
    Doctype,
    Comment,
    Text(StrTendril),
    Element(Box<Element>),
}

pub struct Node {
    pub parent: u32,
    pub first_child: u32,
    pub last_child: u32,
    pub prev: u32,
    pub next: u32,
    pub data: Data,
}

impl Node {
    fn new(data: Data) -> Node {
        Node {
            parent: NONE,
            first_child: NONE,
            last_child: NONE,
            prev: NONE,
            next: NONE,
            data,
        }
    }

    pub fn element(&self) -> Option<&Element> {
        match &self.data {
            Data::Element(e) => Some(e),
            _ => None,
        }
    }
}

impl Element {
    /// The value of the attribute *name* (no namespace: `xlink:href` is not `href`).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.name.ns.is_empty() && &*a.name.local == name)
            .map(|a| &*a.value)
    }

    pub fn local(&self) -> &str {
        &self.name.local
    }
}

/// The parsed page: node 0 is the document.
pub struct Arena {
    pub nodes: Vec<Node>,
}

impl Arena {
    pub fn new() -> Arena {
        Arena {
            nodes: vec![Node::new(Data::Document)],
        }
    }

    pub fn push(&mut self, data: Data) -> u32 {
        self.nodes.push(Node::new(data));
        (self.nodes.len() - 1) as u32
    }

    /// Detach *id* from its parent and siblings.
    pub fn detach(&mut self, id: u32) {
        let (parent, prev, next) = {
            let n = &self.nodes[id as usize];
            (n.parent, n.prev, n.next)
        };
        if parent == NONE {
            return;
        }
        if prev == NONE {
            self.nodes[parent as usize].first_child = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NONE {
            self.nodes[parent as usize].last_child = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        let n = &mut self.nodes[id as usize];
        n.parent = NONE;
        n.prev = NONE;
        n.next = NONE;
    }

    pub fn append(&mut self, parent: u32, id: u32) {
        self.detach(id);
        let last = self.nodes[parent as usize].last_child;
        {
            let n = &mut self.nodes[id as usize];
            n.parent = parent;
            n.prev = last;
        }
        if last == NONE {
            self.nodes[parent as usize].first_child = id;
        } else {
            self.nodes[last as usize].next = id;
        }
        self.nodes[parent as usize].last_child = id;
    }

    fn insert_before(&mut self, sibling: u32, id: u32) {
        self.detach(id);
        let (parent, prev) = {
            let s = &self.nodes[sibling as usize];
            (s.parent, s.prev)
        };
        {
            let n = &mut self.nodes[id as usize];
            n.parent = parent;
            n.prev = prev;
            n.next = sibling;
        }
        self.nodes[sibling as usize].prev = id;
        if prev == NONE {
            self.nodes[parent as usize].first_child = id;
        } else {
            self.nodes[prev as usize].next = id;
        }
    }

    /// Append *text* to the last child of *parent* if it is text (the parser's text nodes are
    /// merged, as a browser's are), else as a new text node.
    pub fn append_text(&mut self, parent: u32, text: &str) {
        let last = self.nodes[parent as usize].last_child;
        if last != NONE {
            if let Data::Text(t) = &mut self.nodes[last as usize].data {
                t.push_slice(text);
                return;
            }
        }
        let id = self.push(Data::Text(StrTendril::from_slice(text)));
        self.append(parent, id);
    }

    /// The document element (`<html>`), if any.
    pub fn root(&self) -> u32 {
        let mut cur = self.nodes[0].first_child;
        while cur != NONE {
            if matches!(self.nodes[cur as usize].data, Data::Element(_)) {
                return cur;
            }
            cur = self.nodes[cur as usize].next;
        }
        NONE
    }
}

/// The tree builder's sink: the arena behind a `RefCell` (html5ever's sink takes `&self`).
pub struct Sink {
    arena: RefCell<Arena>,
}

/// An element's name, owned (atoms are cheap to clone): the arena cannot lend a reference
/// out of its `RefCell`.
#[derive(Debug)]
pub struct Name {
    ns: Namespace,
    local: LocalName,
}

impl ElemName for Name {
    fn ns(&self) -> &Namespace {
        &self.ns
    }
    fn local_name(&self) -> &LocalName {
        &self.local
    }
}

impl TreeSink for Sink {
    type Handle = u32;
    type Output = Arena;
    type ElemName<'a> = Name;

    fn finish(self) -> Arena {
        self.arena.into_inner()
    }

    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> u32 {
        0
    }

    fn elem_name<'a>(&'a self, target: &'a u32) -> Name {
        let arena = self.arena.borrow();
        match &arena.nodes[*target as usize].data {
            Data::Element(e) => Name {
                ns: e.name.ns.clone(),
                local: e.name.local.clone(),
            },
            _ => Name {
                ns: Namespace::from(""),
                local: LocalName::from(""),
            },
        }
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> u32 {
        let mut arena = self.arena.borrow_mut();
        let template = if flags.template {
            arena.push(Data::Document)
        } else {
            NONE
        };
        arena.push(Data::Element(Box::new(Element {
            name,
            attrs,
            template,
            annotation_html: flags.mathml_annotation_xml_integration_point,
        })))
    }

    fn create_comment(&self, _text: StrTendril) -> u32 {
        self.arena.borrow_mut().push(Data::Comment)
    }

    fn create_pi(&self, _target: StrTendril, _data: StrTendril) -> u32 {
        self.arena.borrow_mut().push(Data::Comment)
    }

    fn append(&self, parent: &u32, child: NodeOrText<u32>) {
        let mut arena = self.arena.borrow_mut();
        match child {
            NodeOrText::AppendNode(id) => arena.append(*parent, id),
            NodeOrText::AppendText(text) => arena.append_text(*parent, &text),
        }
    }

    fn append_based_on_parent_node(&self, element: &u32, prev: &u32, child: NodeOrText<u32>) {
        let has_parent = self.arena.borrow().nodes[*element as usize].parent != NONE;
        if has_parent {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev, child);
        }
    }

    fn append_doctype_to_document(&self, _: StrTendril, _: StrTendril, _: StrTendril) {
        let mut arena = self.arena.borrow_mut();
        let id = arena.push(Data::Doctype);
        arena.append(0, id);
    }

    fn get_template_contents(&self, target: &u32) -> u32 {
        match &self.arena.borrow().nodes[*target as usize].data {
            Data::Element(e) if e.template != NONE => e.template,
            _ => *target,
        }
    }

    fn same_node(&self, x: &u32, y: &u32) -> bool {
        x == y
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &u32, new_node: NodeOrText<u32>) {
        let mut arena = self.arena.borrow_mut();
        match new_node {
            NodeOrText::AppendNode(id) => arena.insert_before(*sibling, id),
            NodeOrText::AppendText(text) => {
                let prev = arena.nodes[*sibling as usize].prev;
                if prev != NONE {
                    if let Data::Text(t) = &mut arena.nodes[prev as usize].data {
                        t.push_tendril(&text);
                        return;
                    }
                }
                let id = arena.push(Data::Text(text));
                arena.insert_before(*sibling, id);
            }
        }
    }

    fn add_attrs_if_missing(&self, target: &u32, attrs: Vec<Attribute>) {
        let mut arena = self.arena.borrow_mut();
        if let Data::Element(e) = &mut arena.nodes[*target as usize].data {
            for attr in attrs {
                if !e.attrs.iter().any(|a| a.name == attr.name) {
                    e.attrs.push(attr);
                }
            }
        }
    }

    fn remove_from_parent(&self, target: &u32) {
        self.arena.borrow_mut().detach(*target);
    }

    fn reparent_children(&self, node: &u32, new_parent: &u32) {
        let mut arena = self.arena.borrow_mut();
        let mut cur = arena.nodes[*node as usize].first_child;
        while cur != NONE {
            let next = arena.nodes[cur as usize].next;
            arena.append(*new_parent, cur);
            cur = next;
        }
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &u32) -> bool {
        match &self.arena.borrow().nodes[*handle as usize].data {
            Data::Element(e) => e.annotation_html,
            _ => false,
        }
    }
}

/// Parse a decoded page as a browser with scripting off does (as lexbor does here:
/// `<noscript>`'s content is markup, and its links are links).
pub fn parse(text: StrTendril) -> Arena {
    let opts = ParseOpts {
        tree_builder: TreeBuilderOpts {
            scripting_enabled: false,
            ..Default::default()
        },
        ..Default::default()
    };
    parse_document(
        Sink {
            arena: RefCell::new(Arena::new()),
        },
        opts,
    )
    .one(text)
}
