//! The `#[message]` attribute of `ebb-handler`; use it from there
//! (`ebb_handler::message`, or `ebb::message`).

use proc_macro::TokenStream;
use proc_macro_crate::{FoundCrate, crate_name};
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::parse::Parser as _;
use syn::{Data, DeriveInput, Fields, LitStr, Path};

/// Makes a struct a message type: derives serde's `Serialize` and
/// `Deserialize` with camelCase keys on the wire, and implements
/// `MessageType` with the struct's name as the type name, or the one given
/// as `#[message(type_name = "...")]`.
///
/// See `ebb_handler::message` for the documentation and examples.
#[proc_macro_attribute]
pub fn message(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args.into(), &item.into()) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand(args: TokenStream2, item: &TokenStream2) -> syn::Result<TokenStream2> {
    let type_name = parse_args(args)?;
    let input: DeriveInput = syn::parse2(item.clone())?;
    match &input.data {
        Data::Struct(data) if !matches!(data.fields, Fields::Unnamed(_)) => {}
        Data::Struct(_) => {
            return Err(syn::Error::new_spanned(
                &input.ident,
                "#[message] needs named fields (or none): message data is a JSON object",
            ));
        }
        _ => {
            return Err(syn::Error::new_spanned(
                &input.ident,
                "#[message] goes on a struct: message data is a JSON object",
            ));
        }
    }
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "#[message] does not take generic structs: a message type has one name",
        ));
    }
    let handler = handler_crate()?;
    let serde_path = format!("{}::__private::serde", path_string(&handler));
    let serde: Path = syn::parse_str(&serde_path)?;
    let ident = &input.ident;
    let type_name = type_name.unwrap_or_else(|| LitStr::new(&ident.to_string(), ident.span()));
    Ok(quote! {
        #[derive(#serde::Serialize, #serde::Deserialize)]
        #[serde(crate = #serde_path, rename_all = "camelCase")]
        #item

        impl #handler::MessageType for #ident {
            const TYPE_NAME: &'static str = #type_name;
        }
    })
}

/// `type_name = "..."`, or nothing.
fn parse_args(args: TokenStream2) -> syn::Result<Option<LitStr>> {
    let mut type_name = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("type_name") {
            let name: LitStr = meta.value()?.parse()?;
            if name.value().trim().is_empty() || name.value().trim() != name.value() {
                return Err(syn::Error::new_spanned(
                    &name,
                    "a type name is not empty and has no surrounding whitespace",
                ));
            }
            type_name = Some(name);
            Ok(())
        } else {
            Err(meta.error("#[message] takes only `type_name = \"...\"`"))
        }
    });
    parser.parse2(args)?;
    Ok(type_name)
}

/// The path the calling crate knows `ebb-handler` by: itself, or through
/// the `ebb` facade.
fn handler_crate() -> syn::Result<Path> {
    let found = crate_name("ebb-handler")
        .map(|found| (found, None))
        .or_else(|_| crate_name("ebb").map(|found| (found, Some("handler"))))
        .map_err(|_| {
            syn::Error::new(
                Span::call_site(),
                "#[message] needs the `ebb-handler` or `ebb` crate as a dependency",
            )
        })?;
    // `Itself` is what ebb-handler's own integration tests, examples and
    // doc tests see, which know it as an external crate.
    let path = match found {
        (FoundCrate::Itself, None) => "::ebb_handler".to_owned(),
        (FoundCrate::Itself, Some(module)) => format!("::ebb::{module}"),
        (FoundCrate::Name(name), None) => format!("::{name}"),
        (FoundCrate::Name(name), Some(module)) => format!("::{name}::{module}"),
    };
    syn::parse_str(&path)
}

fn path_string(path: &Path) -> String {
    quote!(#path).to_string().replace(' ', "")
}

/// Registers a type's handlers of several message types as one: on a
/// struct or enum that implements `Handler<A>`, `Handler<B>`, .. (with one
/// error type), `#[handles(A, B, ..)]` implements `Handlers`, so that
/// `Dispatcher::handlers(value)` routes each type to the one value.
///
/// See `ebb_handler::handles` for the documentation and an example.
#[proc_macro_attribute]
pub fn handles(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand_handles(args.into(), &item.into()) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand_handles(args: TokenStream2, item: &TokenStream2) -> syn::Result<TokenStream2> {
    let types =
        syn::punctuated::Punctuated::<syn::Type, syn::Token![,]>::parse_terminated.parse2(args)?;
    let input: DeriveInput = syn::parse2(item.clone())?;
    let Some(first) = types.first() else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[handles(..)] names the message types the type handles: #[handles(Deposit, Withdraw)]",
        ));
    };
    let handler = handler_crate()?;
    let ident = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    let mut predicates: Vec<TokenStream2> = where_clause
        .map(|clause| clause.predicates.iter().map(|p| quote!(#p)).collect())
        .unwrap_or_default();
    predicates.push(quote!(Self: #handler::Handler<#first>));
    for message in types.iter().skip(1) {
        predicates.push(quote!(
            Self: #handler::Handler<#message, Error = <Self as #handler::Handler<#first>>::Error>
        ));
    }
    let routes = types.iter().map(|message| {
        quote!(let dispatcher = dispatcher.on_shared::<#message, Self>(::std::sync::Arc::clone(&self));)
    });
    Ok(quote! {
        #item

        impl #impl_generics #handler::Handlers for #ident #type_generics
        where
            #(#predicates,)*
        {
            type Error = <Self as #handler::Handler<#first>>::Error;

            fn register<E>(
                self: ::std::sync::Arc<Self>,
                dispatcher: #handler::Dispatcher<E>,
            ) -> #handler::Dispatcher<E>
            where
                E: ::core::convert::From<#handler::Error>
                    + ::core::convert::From<Self::Error>
                    + ::core::marker::Send
                    + 'static,
            {
                #(#routes)*
                dispatcher
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(args: TokenStream2, item: &TokenStream2) -> String {
        expand(args, item).expect_err("refused").to_string()
    }

    #[test]
    fn only_plain_structs_with_named_fields_are_messages() {
        let an_enum = quote!(
            enum Deposit {
                A,
            }
        );
        assert!(error(quote!(), &an_enum).contains("goes on a struct"));
        let a_tuple = quote!(
            struct Deposit(i64);
        );
        assert!(error(quote!(), &a_tuple).contains("named fields"));
        let generic = quote!(
            struct Deposit<T> {
                amount: T,
            }
        );
        assert!(error(quote!(), &generic).contains("generic structs"));
    }

    #[test]
    fn arguments_are_checked() {
        let deposit = quote!(
            struct Deposit {}
        );
        assert!(error(quote!(name = "X"), &deposit).contains("only `type_name"));
        assert!(error(quote!(type_name = " X"), &deposit).contains("surrounding whitespace"));
        assert!(error(quote!(type_name = ""), &deposit).contains("not empty"));
        assert_eq!(
            parse_args(quote!(type_name = "Withdrawn"))
                .unwrap()
                .map(|name| name.value()),
            Some("Withdrawn".to_owned())
        );
    }
}
